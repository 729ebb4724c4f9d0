"""linjail: DragonFly BSD jails for Linux."""
