"""linjail-oci: an OCI runtime with runc's command line whose containers are jails.

  config.py   config.json -> Container (frozen, validated: what cannot hold is
              refused in one line) -> the JailSpec the lifecycle starts
  store.py    the containers of one --root: state files, status, locking
  init.py     the jail's first process as the container's PID 1 (in place of
              linjail's reaper): mounts, masks, sysctls, user, capabilities,
              seccomp, the wait for `start`, exec of process.args
  runtime.py  create / start / state / kill / delete / run, as the runtime
              spec's lifecycle says
  cli/linjail_oci.py parses runc's command line and calls runtime.py.
"""
