"""jailctl's usage, shared by the dispatcher (jailctl.py) and the verbs it
hands on (jailctl_build.py)."""

USAGE = """usage: jailctl build PATH --service PROG [PROG ...]
       jailctl build PATH --complete [--suite SUITE] [--include PKG,...]
                     [--mirror URL] [--hostname NAME]
       jailctl build PATH --thin BASE
       jailctl build PATH --from-tar FILE
       jailctl destroy PATH
       jailctl remove [-t SECONDS] JID
       jailctl sysctl [NAME[=VALUE] ...]
       jailctl doctor
       jailctl start|stop|restart|status [-f FILE] [NAME ...]"""
