"""Many hosts through SSH (Fabric): an inventory, host patterns, one step run on every host in parallel,
and the table of what each host answered.

Remote execution is Fabric's (``fabric.Connection``: paramiko, ``~/.ssh/config`` with ProxyJump,
IdentityFile, User and Port honoured). rebuilt itself travels to each host as a source archive of this
checkout (``ship.py``), so a host needs only a Python >= 3.10 and SSH.
"""
