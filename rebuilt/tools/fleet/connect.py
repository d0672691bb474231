"""One SSH connection per host (``fabric.Connection``), and what a failed connection means in words.

Fabric reads ``~/.ssh/config`` (HostName, User, Port, IdentityFile, ProxyJump, ConnectTimeout); what the
inventory names (user, port, identity) is given to Fabric explicitly and wins, as ``fab -H`` flags do.
The messages name the host, what happened and what to do, so a fleet run can go on without it.
"""

from __future__ import annotations

import os
import socket

from rebuilt.tools.fleet.inventory import FleetHost


def connection(host: FleetHost, connect_timeout: float):
    """A Fabric connection (not yet open) to ``host``, the inventory's user, port and key winning."""
    import fabric

    kwargs: dict = {"banner_timeout": connect_timeout, "auth_timeout": connect_timeout}
    if host.identity:
        kwargs["key_filename"] = [os.path.expanduser(host.identity)]
    conn = fabric.Connection(host.host, user=host.user, port=host.port, connect_timeout=int(connect_timeout),
                             connect_kwargs=kwargs)
    # Fabric accepts any host key (paramiko's AutoAddPolicy) and reads no known_hosts: read the user's, so
    # that a host showing another key than the one ssh recorded is refused, as ssh refuses it; a host not
    # in it is accepted as `StrictHostKeyChecking accept-new` would (without writing the file).
    if conn.ssh_config.get("stricthostkeychecking", "").lower() != "no":
        known = conn.ssh_config.get("userknownhostsfile", "~/.ssh/known_hosts").split()[0]
        if os.path.isfile(os.path.expanduser(known)):
            conn.client.get_host_keys().load(os.path.expanduser(known))  # read only: never rewritten
    return conn


def where(conn) -> str:
    """``root@127.0.0.1:2201`` as SSH resolved it (after ~/.ssh/config)."""
    return f"{conn.user}@{conn.host}:{conn.port}"


def explain(exc: BaseException, host: FleetHost, conn=None, connect_timeout: float = 10,
            opened: bool = True) -> tuple[str, str, str]:
    """(status, message, what to do) for an exception raised while connecting (``opened`` False) or
    running on ``host``."""
    import paramiko
    from paramiko.ssh_exception import NoValidConnectionsError

    at = where(conn) if conn is not None else host.destination
    if isinstance(exc, socket.gaierror):
        return ("unreachable", f"{host.name}: the name {host.host!r} does not resolve",
                "check the name, its Host entry in ~/.ssh/config, or the inventory (inv config --key fleet)")
    if isinstance(exc, (NoValidConnectionsError, ConnectionRefusedError)):
        return ("unreachable", f"{host.name}: {at} refused the connection (no sshd listening there)",
                f"start sshd on {host.name} or fix the port (inventory or ~/.ssh/config); the other hosts went on")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ("unreachable", f"{host.name}: {at} did not answer within {connect_timeout:g}s",
                "check that the host is up and reachable (VPN, ProxyJump), or raise --set fleet.connect_timeout=N")
    if isinstance(exc, paramiko.BadHostKeyException):
        return ("unreachable", f"{host.name}: {at} showed a host key other than the one in known_hosts",
                f"if the host was reinstalled: ssh-keygen -R {_known_name(host, conn)}, then connect once with ssh "
                "to accept it; if not, find out who answers there first")
    if isinstance(exc, paramiko.AuthenticationException):
        return ("refused", f"{host.name}: {at} refused the key(s) offered ({exc})",
                f"add your public key to {host.name}'s ~/.ssh/authorized_keys (ssh-copy-id {host.destination}), "
                "or name the right one: identity in the inventory, IdentityFile in ~/.ssh/config")
    if not opened and isinstance(exc, (EOFError, paramiko.SSHException, ConnectionResetError)):
        return ("unreachable", f"{host.name}: {at} took the connection but no SSH login completed within "
                f"{connect_timeout:g}s ({type(exc).__name__}: {exc or 'closed'})",
                "check that sshd (not another service) listens there and that the host is not overloaded, "
                "or raise --set fleet.connect_timeout=N")
    if isinstance(exc, (EOFError, paramiko.SSHException, ConnectionResetError, OSError)):
        return ("lost", f"{host.name}: the connection to {at} was lost ({type(exc).__name__}: {exc or 'closed'})",
                f"check that {host.name} is up (it may have rebooted or dropped off the network), then run again: "
                "only the hosts that did not finish run again")
    return ("failed", f"{host.name}: {type(exc).__name__}: {exc}", "run again with -v, or report this")


def _known_name(host: FleetHost, conn) -> str:
    """How known_hosts names the host: ``name``, or ``'[name]:port'`` off port 22."""
    name, port = (conn.host, conn.port) if conn is not None else (host.host, host.port or 22)
    return name if int(port) == 22 else f"'[{name}]:{port}'"
