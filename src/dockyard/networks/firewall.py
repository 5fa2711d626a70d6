"""iptables rules in chains of our own, tagged with comments so they can be found again.

Chains (P = the daemon's prefix): nat ``DOCKYARD-P`` (DNAT of published ports, jumped
to from PREROUTING and OUTPUT for local destinations) and ``DOCKYARD-P-POST``
(MASQUERADE), filter ``DOCKYARD-P-FWD`` (jumped to from FORWARD) with the isolation
chains ``DOCKYARD-P-ISO1/ISO2``. Every rule carries ``-m comment --comment n<net>`` or
``c<container>`` so a network's or a container's rules are deleted by listing the
chain, and a crash is reconciled by flushing the chains and re-adding what is live.

Published ports on 127.0.0.1 are DNATed in OUTPUT (``route_localnet`` on the bridge
and a MASQUERADE of 127.0.0.0/8 sources) rather than relayed by a userland proxy:
the kernel path keeps throughput at the container's own speed, and the port is
still held by a bound socket in the daemon so host programs cannot take it.

The same class, made with ``family=6``, keeps the ip6tables side (as dockerd with ``ip6tables``): the
same chains in ip6tables' tables, rules for the IPv6 subnets of dual-stack networks and the [::]
bindings of their containers. IPv6 has no ``route_localnet``, so ``[::1]`` is never DNATed (the
kernel would drop it); the daemon relays it instead (relay.py).
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import Counter

from dockyard.errors import SystemError_

log = logging.getLogger("dockyard.networks")


class FirewallError(SystemError_):
    """iptables refused our rules; the message names what failed, iptables' own output goes to the log."""


def _tag_net(network_id: str) -> str:
    return "n" + network_id[:12]


def _tag_ctr(container_id: str) -> str:
    return "c" + container_id[:12]


class Firewall:
    def __init__(self, prefix: str, enabled: bool = True, family: int = 4) -> None:
        self.enabled = enabled
        self.v6 = family == 6
        self._cmd = "ip6tables" if self.v6 else "iptables"
        self._host_len = "/128" if self.v6 else "/32"
        base = f"DOCKYARD-{prefix}"
        self.dnat = base
        self.post = f"{base}-POST"
        self.fwd = f"{base}-FWD"
        self.iso1 = f"{base}-ISO1"
        self.iso2 = f"{base}-ISO2"
        self._lock = threading.Lock()
        self._jumps = [
            ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
            ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
            ("nat", "POSTROUTING", ["-j", self.post]),
            ("filter", "FORWARD", ["-j", self.fwd]),
        ]
        self._chains = [("nat", self.dnat), ("nat", self.post), ("filter", self.fwd),
                        ("filter", self.iso1), ("filter", self.iso2)]

    # -- plumbing -------------------------------------------------------------------------------

    def _ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([self._cmd, "-w", "-t", table, *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            log.warning("%s -t %s %s: %s", self._cmd, table, " ".join(args), p.stderr.strip())
            raise FirewallError(f"{self._cmd} refused a change to chain {args[1] if len(args) > 1 else '?'} "
                                f"of table {table}")
        return p

    def _restore_tables(self, tables: dict[str, list[str]]) -> None:
        """Apply rule lines to several tables with one ``iptables-restore --noflush`` process."""
        script = "".join(f"*{t}\n" + "\n".join(lines) + "\nCOMMIT\n" for t, lines in tables.items() if lines)
        if not script:
            return
        p = subprocess.run([f"{self._cmd}-restore", "-w", "--noflush"], input=script, capture_output=True, text=True)
        if p.returncode != 0:
            log.warning("%s-restore of %s rules failed: %s", self._cmd, "/".join(tables), p.stderr.strip())
            raise FirewallError(f"{self._cmd} did not take the {'/'.join(t for t, ln in tables.items() if ln)} "
                                "rules (a chain of ours may be missing)")

    def _chain_rules(self, table: str, chain: str) -> list[str]:
        p = self._ipt(table, "-S", chain, check=False)
        if p.returncode != 0:
            return []
        return [ln for ln in p.stdout.splitlines() if ln.startswith("-A ")]

    def _delete_tagged(self, tag: str) -> None:
        needle = f"--comment {tag}"
        for table, chain in self._chains:
            doomed = [ln for ln in self._chain_rules(table, chain) if needle in ln]
            for ln in doomed:
                self._ipt(table, "-D", *_split(ln)[1:], check=False)

    # -- chains ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Create our chains and jumps (idempotent), flush them, and turn on forwarding."""
        if not self.enabled:
            return
        with self._lock:
            for table, chain in self._chains:
                if self._ipt(table, "-n", "-L", chain, check=False).returncode != 0:
                    self._ipt(table, "-N", chain)
                else:
                    self._ipt(table, "-F", chain)
            for table, chain, rule in self._jumps:
                if self._ipt(table, "-C", chain, *rule, check=False).returncode != 0:
                    self._ipt(table, "-I", chain, "1", *rule)
            # replies of published-port connections may cross networks (see add_ports)
            self._ipt("filter", "-A", self.fwd, "-m", "conntrack", "--ctstate", "DNAT", "-m", "conntrack",
                      "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
            self._ipt("filter", "-A", self.fwd, "-j", self.iso1)
            if not self.v6:  # IPv6 forwarding is turned on with the first dual-stack network (add_network)
                with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                    f.write("1")

    def teardown(self) -> None:
        """Remove every chain and jump of ours."""
        with self._lock:
            for table, chain, rule in self._jumps:
                while self._ipt(table, "-D", chain, *rule, check=False).returncode == 0:
                    pass
            for table, chain in self._chains:
                self._ipt(table, "-F", chain, check=False)
            for table, chain in self._chains:
                self._ipt(table, "-X", chain, check=False)

    # -- networks -------------------------------------------------------------------------------

    def add_network(self, network_id: str, bridge: str, subnet: str, internal: bool) -> None:
        """Forwarding, isolation and masquerading for one bridge network (its IPv6 subnet with ``family=6``)."""
        if not self.v6:
            set_route_localnet(bridge)
        if not self.enabled:
            return
        filt, nat = self._network_rules(network_id, bridge, subnet, internal)
        with self._lock:
            if self.v6:
                with open("/proc/sys/net/ipv6/conf/all/forwarding", "w") as f:
                    f.write("1")
            self._restore_tables({"filter": filt, "nat": nat})  # one iptables-restore for both tables

    def _network_rules(self, network_id: str, bridge: str, subnet: str, internal: bool) -> tuple[list[str], list[str]]:
        """The (filter, nat) rule lines of one network."""
        c = ["-m", "comment", "--comment", _tag_net(network_id)]
        cs = " ".join(c)
        filt = [
            f"-A {self.iso1} -i {bridge} ! -o {bridge} -j {self.iso2} {cs}",
            f"-A {self.iso2} -o {bridge} -j DROP {cs}",
        ]
        nat = [] if self.v6 else [f"-A {self.post} -s 127.0.0.0/8 -o {bridge} -j MASQUERADE {cs}"]
        if internal:
            filt += [
                f"-A {self.iso1} -i {bridge} ! -o {bridge} -j DROP {cs}",
                f"-A {self.iso1} -o {bridge} ! -i {bridge} -j DROP {cs}",
            ]
        else:
            nat.append(f"-A {self.post} -s {subnet} ! -o {bridge} -j MASQUERADE {cs}")
        filt += [
            f"-A {self.fwd} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT {cs}",
            f"-A {self.fwd} -i {bridge} -j ACCEPT {cs}",
            f"-A {self.fwd} -o {bridge} -j DROP {cs}",
        ]
        return filt, nat

    def expected_counts(self, networks: list[tuple[str, str, str, bool]],
                        containers: list[tuple[str, str, str, str, list[tuple[str, str, int, int]]]]) -> Counter[str]:
        """How many rules each tag should have: ``networks`` as (id, bridge, subnet, internal), ``containers``
        as (id, bridge, subnet, ip, ports)."""
        want: Counter[str] = Counter()
        for net_id, bridge, subnet, internal in networks:
            filt, nat = self._network_rules(net_id, bridge, subnet, internal)
            want[_tag_net(net_id)] += len(filt) + len(nat)
        for cid, bridge, subnet, ip, ports in containers:
            nat, filt = self._port_rules(cid, bridge, subnet, ip, ports)
            want[_tag_ctr(cid)] += len(nat) + len(filt)
        return want

    def missing(self, want: Counter[str]) -> list[str]:
        """What of ours is not on the host as it should be (empty: intact), from one iptables-save.

        Chains, the jumps into them, the two rules every FWD chain starts with, and the number of rules of each
        network and container (``want``, from expected_counts); rules of anything not in ``want`` count too."""
        if not self.enabled:
            return []
        p = subprocess.run([f"{self._cmd}-save"], capture_output=True, text=True)
        table = ""
        chains: set[tuple[str, str]] = set()
        rules: list[tuple[str, list[str]]] = []
        for ln in p.stdout.splitlines():
            if ln.startswith("*"):
                table = ln[1:].strip()
            elif ln.startswith(":"):
                chains.add((table, ln[1:].split()[0]))
            elif ln.startswith("-A "):
                rules.append((table, ln.split()))
        out = [f"chain {chain} ({table})" for table, chain in self._chains if (table, chain) not in chains]
        for table, chain, rule in self._jumps:
            if not any(t == table and parts[1] == chain and parts[-2:] == ["-j", rule[-1]]
                       for t, parts in rules):
                out.append(f"the jump from {chain} to {rule[-1]} ({table})")
        ours = {chain for _t, chain in self._chains}
        have: Counter[str] = Counter()
        base = 0
        for _t, parts in rules:
            if parts[1] not in ours:
                continue
            if "--comment" in parts:
                have[parts[parts.index("--comment") + 1].strip('"')] += 1
            elif parts[1] == self.fwd:
                base += 1
        if base != 2:
            out.append(f"the rules that start {self.fwd}")
        for tag in set(want) | set(have):
            if want.get(tag, 0) != have.get(tag, 0):
                out.append(f"rules of {'network' if tag.startswith('n') else 'container'} {tag[1:]}")
        return out

    def remove_network(self, network_id: str) -> None:
        if self.enabled:
            with self._lock:
                self._delete_tagged(_tag_net(network_id))

    def keep_only_networks(self, network_ids: list[str]) -> None:
        """Delete every network rule of ours whose network is not in ``network_ids`` (one iptables-save per
        table, one iptables-restore for what goes)."""
        if not self.enabled:
            return
        known = {_tag_net(n) for n in network_ids}
        ours = {chain for _table, chain in self._chains}
        with self._lock:
            doomed: dict[str, list[str]] = {}
            for table in ("filter", "nat"):
                p = subprocess.run([f"{self._cmd}-save", "-t", table], capture_output=True, text=True)
                for ln in p.stdout.splitlines():
                    parts = ln.split()
                    if len(parts) < 2 or parts[0] != "-A" or parts[1] not in ours or "--comment" not in parts:
                        continue
                    tag = parts[parts.index("--comment") + 1].strip('"')
                    if tag.startswith("n") and tag not in known:
                        doomed.setdefault(table, []).append("-D" + ln[2:])
            if doomed:
                self._restore_tables(doomed)

    # -- published ports ------------------------------------------------------------------------

    def _port_rules(self, container_id: str, bridge: str, subnet: str, container_ip: str,
                    ports: list[tuple[str, str, int, int]]) -> tuple[list[str], list[str]]:
        """The (nat, filter) rule specs, without the -A/-I verb, of a container's published ports."""
        cs = f"-m comment --comment {_tag_ctr(container_id)}"
        nat: list[str] = []
        filt: list[str] = []
        hl = self._host_len
        to = f"[{container_ip}]" if self.v6 else container_ip
        for proto, host_ip, host_port, cport in ports:
            if self.v6 and host_ip == "::1":
                continue  # relayed by the daemon: the kernel drops ::1 DNATed off the loopback
            if host_ip in ("", "0.0.0.0", "::"):
                dst = "! -d ::1/128 " if self.v6 else ""
            else:
                dst = f"-d {host_ip}{hl} "
            nat.append(f"{self.dnat} {dst}-p {proto} -m {proto} --dport {host_port} "
                       f"-j DNAT --to-destination {to}:{cport} {cs}")
            nat.append(f"{self.post} -s {subnet} -d {container_ip}{hl} -p {proto} -m {proto} --dport {cport} "
                       f"-m conntrack --ctstate DNAT -j MASQUERADE {cs}")
            # before the isolation jump, and only for DNATed connections: a published port is reachable
            # from every network (as through the host), the container's own address stays isolated
            filt.append(f"{self.fwd} -d {container_ip}{hl} -o {bridge} -p {proto} -m {proto} "
                        f"--dport {cport} -m conntrack --ctstate DNAT -j ACCEPT {cs}")
        return nat, filt

    def add_ports(self, container_id: str, bridge: str, subnet: str, container_ip: str,
                  ports: list[tuple[str, str, int, int]]) -> None:
        """DNAT each (proto, host_ip, host_port, container_port) to the container, and let it through
        (both tables in one iptables-restore)."""
        if not self.enabled or not ports:
            return
        nat, filt = self._port_rules(container_id, bridge, subnet, container_ip, ports)
        fwd_first = [f"-I {self.fwd} 1 {ln[len(self.fwd) + 1:]}" for ln in filt]
        with self._lock:
            self._restore_tables({"nat": [f"-A {ln}" for ln in nat], "filter": fwd_first})

    def remove_ports(self, container_id: str, bridge: str, subnet: str, container_ip: str,
                     ports: list[tuple[str, str, int, int]]) -> None:
        """Delete the rules ``add_ports`` made, by spec in one iptables-restore; when some are not
        there (a crash, a manual flush) fall back to finding the container's rules by their tag."""
        if not self.enabled or not ports:
            return
        nat, filt = self._port_rules(container_id, bridge, subnet, container_ip, ports)
        with self._lock:
            try:
                self._restore_tables({"nat": [f"-D {ln}" for ln in nat], "filter": [f"-D {ln}" for ln in filt]})
                return
            except SystemError_:
                pass
            self._delete_tagged(_tag_ctr(container_id))

    def remove_container(self, container_id: str) -> None:
        """Every rule of one container (all its ports on all its networks), found by listing."""
        if self.enabled:
            with self._lock:
                self._delete_tagged(_tag_ctr(container_id))

    def rules(self) -> list[str]:
        """All our rules (tests and diagnostics)."""
        out = []
        for table, chain in self._chains:
            out += [f"{table}: {ln}" for ln in self._chain_rules(table, chain)]
        return out


def _split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


def set_route_localnet(bridge: str) -> None:
    """Let 127.0.0.1-sourced (DNATed) packets leave through the bridge."""
    try:
        with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass
