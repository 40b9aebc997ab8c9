"""Basic, network, power and DNS/ping commands (application note chapters 3 and 4, AT_NOTES 1.2-1.4)."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import TYPE_CHECKING

from .base import (
    CME_INCORRECT_PARAMETERS,
    CME_NO_NETWORK,
    CME_OPERATION_NOT_ALLOWED,
    CME_SIM_BUSY,
    CME_SIM_FAILURE,
    CommandError,
    CommandSet,
    ModemContext,
    ParsedCommand,
    ParseError,
    Registry,
    reply_setting,
)
from .network import is_ip

if TYPE_CHECKING:
    from .core import Emulator

#: Seconds between ``OK`` and the ``+CDNSGIP`` URC.
DNS_DELAY = 0.05
#: Seconds between ping replies (wall clock; the reported RTT is simulated).
PING_INTERVAL = 0.02
#: Simulated ping RTT in the module's 100 ms units, and TTL.
PING_RTT = 2
PING_TTL = 52

BAUD_RATES = (0, 4800, 9600, 115200, 230400, 460800, 921600)
PDP_TYPES = {"IP": "IP", "IPV6": "IPV6", "IPV4V6": "IPV4V6", "NON-IP": "Non-IP"}
_BITS8 = re.compile(r"^[01]{8}$")


def _bits(cmd: ParsedCommand, index: int, current: str) -> str:
    a = cmd.arg(index)
    if a.empty:
        return current
    if not _BITS8.match(a.text):
        raise ParseError(f"{cmd.name}: timer must be 8 bits, got {a.text!r}")
    return a.text


class BasicCommands(CommandSet):
    """AT, ATE, ATI, identification, CMEE, CPIN, CSQ, registration, CGATT/CGACT, COPS, CGCONTRDP,
    *MCGDEFCONT, CFUN, CPSMS, CPSMSTATUS, CENG, CBC, CCLK, IPR, RETENTION, CDNSGIP, CIPPING."""

    def __init__(self, ctx: ModemContext) -> None:
        super().__init__(ctx)
        self.emu: Emulator = ctx  # type: ignore[assignment]

    def register(self, registry: Registry) -> None:
        """Register the handlers."""
        table = {
            "": self.at,
            "E": self.ate,
            "I": self.ati,
            "V": self.atv,
            "Q": self.atq,
            "Z": self.atz,
            "&F": self.atz,
            "&W": self.at,
            "+CGMI": self.cgmi,
            "+GMI": self.cgmi,
            "+CGMM": self.cgmm,
            "+GMM": self.cgmm,
            "+CGMR": self.cgmr,
            "+GMR": self.cgmr,
            "+CGSN": self.cgsn,
            "+GSN": self.cgsn,
            "+CIMI": self.cimi,
            "+CCID": self.ccid,
            "+CMEE": self.cmee,
            "+CPIN": self.cpin,
            "+CSQ": self.csq,
            "+CGREG": self.cgreg,
            "+CEREG": self.cereg,
            "+CGATT": self.cgatt,
            "+CGACT": self.cgact,
            "+COPS": self.cops,
            "+CGCONTRDP": self.cgcontrdp,
            "*MCGDEFCONT": self.mcgdefcont,
            "+CFUN": self.cfun,
            "+CPSMS": self.cpsms,
            "+CPSMSTATUS": self.cpsmstatus,
            "+CENG": self.ceng,
            "+CBC": self.cbc,
            "+CCLK": self.cclk,
            "+IPR": self.ipr,
            "+RETENTION": self.retention,
            "+CDNSGIP": self.cdnsgip,
            "+CIPPING": self.cipping,
        }
        for name, fn in table.items():
            registry.register(name, fn)

    # ---------------------------------------------------------------------------------------- basics

    def at(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT``."""
        ctx.ok()

    @staticmethod
    def _flag(cmd: ParsedCommand, hi: int = 1) -> int:
        if cmd.kind != "exec":
            raise ParseError(f"{cmd.name}: unsupported form")
        return cmd.arg(0).as_int(0, hi, default=0)

    def ate(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATE0`` / ``ATE1``."""
        ctx.state.echo = bool(self._flag(cmd))
        ctx.ok()

    def atv(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATV1`` only (numeric result codes are not modelled)."""
        if self._flag(cmd) != 1:
            raise CommandError()
        ctx.ok()

    def atq(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATQ0`` only."""
        if self._flag(cmd) != 0:
            raise CommandError()
        ctx.ok()

    def atz(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATZ`` / ``AT&F``: volatile settings back to defaults (echo on, CMEE 0)."""
        self._flag(cmd)
        ctx.state.echo = True
        ctx.state.cmee = 0
        ctx.ok()

    def ati(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATI``: manufacturer, model, revision."""
        self._flag(cmd, hi=0)
        ctx.reply(self.emu.manufacturer, self.emu.model, f"Revision:{self.emu.revision}")
        ctx.ok()

    def _info(self, ctx: ModemContext, cmd: ParsedCommand, value: str) -> None:
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError()
        ctx.reply(value)
        ctx.ok()

    def cgmi(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGMI``."""
        self._info(ctx, cmd, self.emu.manufacturer)

    def cgmm(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGMM``."""
        self._info(ctx, cmd, self.emu.model)

    def cgmr(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGMR``: ``Revision:<rev>``."""
        self._info(ctx, cmd, f"Revision:{self.emu.revision}")

    def cgsn(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGSN`` (bare IMEI) and ``AT+CGSN=1`` (``+CGSN: <imei>``)."""
        if cmd.kind == "set":
            cmd.check_count(1)
            if cmd.int_arg(0, 0, 1) == 1:
                ctx.reply(f"+CGSN: {self.emu.imei}")
            else:
                ctx.reply(self.emu.imei)
            ctx.ok()
            return
        self._info(ctx, cmd, self.emu.imei)

    def _sim_check(self) -> None:
        if self.emu.consume_sim_busy():
            raise CommandError(CME_SIM_BUSY, "SIM busy")
        if self.emu.state.cfun != 1:
            raise CommandError(CME_SIM_FAILURE, "SIM powered down (CFUN=0)")

    def cimi(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIMI``."""
        if cmd.kind == "exec":
            self._sim_check()
        self._info(ctx, cmd, self.emu.imsi)

    def ccid(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CCID``."""
        if cmd.kind == "exec":
            self._sim_check()
        self._info(ctx, cmd, self.emu.iccid)

    def cmee(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CMEE=0|1|2`` / ``AT+CMEE?``."""
        if cmd.kind == "read":
            ctx.reply(f"+CMEE: {ctx.state.cmee}")
        elif cmd.kind == "test":
            ctx.reply("+CMEE: (0-2)")
        elif cmd.kind == "set":
            cmd.check_count(1)
            ctx.state.cmee = cmd.int_arg(0, 0, 2)
        else:
            ctx.state.cmee = 0
        ctx.ok()

    def cpin(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CPIN?``: ``+CPIN: READY`` (spaced like the note's URCs); ``+CPIN: NOT READY`` at CFUN=0."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "read":
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "no PIN on the emulated SIM")
        if self.emu.consume_sim_busy():
            raise CommandError(CME_SIM_BUSY, "SIM busy")
        ctx.reply("+CPIN: READY" if ctx.state.cfun == 1 else "+CPIN: NOT READY")
        ctx.ok()

    def csq(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSQ``: ``+CSQ: <rssi>,<ber>`` (99,99 with the radio off)."""
        if cmd.kind == "test":
            ctx.reply("+CSQ: (0-31,99),(0-7,99)")
        elif cmd.kind == "exec":
            st = ctx.state
            ctx.reply("+CSQ: 99,99" if st.cfun != 1 else f"+CSQ: {st.csq},{st.ber}")
        else:
            raise CommandError()
        ctx.ok()

    # ---------------------------------------------------------------------------------- registration

    def _location(self) -> str:
        return f'"{self.emu.tac}","{self.emu.cell_id}",9'

    def cgreg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGREG=<n>`` (0-2) / ``AT+CGREG?`` → ``+CGREG: <n>,<stat>[,<lac>,<ci>,<AcT>]``."""
        st = ctx.state
        if cmd.kind == "set":
            cmd.check_count(1)
            st.cgreg_n = cmd.int_arg(0, 0, 2)
        elif cmd.kind == "read":
            line = f"+CGREG: {st.cgreg_n},{st.reg_stat}"
            if st.cgreg_n == 2 and st.reg_stat in (1, 5):
                line += "," + self._location()
            ctx.reply(line)
        elif cmd.kind == "test":
            ctx.reply("+CGREG: (0-2)")
        else:
            raise CommandError()
        ctx.ok()

    def cereg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CEREG=<n>`` (0-5) / ``AT+CEREG?``; n=4 adds the granted PSM timers."""
        st = ctx.state
        if cmd.kind == "set":
            cmd.check_count(1)
            st.cereg_n = cmd.int_arg(0, 0, 5)
        elif cmd.kind == "read":
            line = f"+CEREG: {st.cereg_n},{st.reg_stat}"
            if st.cereg_n >= 2 and st.reg_stat in (1, 5):
                line += "," + self._location()
                if st.cereg_n >= 4 and st.psm_mode == 1:
                    line += f',,,"{st.psm_active}","{st.psm_tau}"'
            ctx.reply(line)
        elif cmd.kind == "test":
            ctx.reply("+CEREG: (0-5)")
        else:
            raise CommandError()
        ctx.ok()

    def cgatt(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGATT?`` / ``AT+CGATT=0|1``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f"+CGATT: {int(st.attached)}")
        elif cmd.kind == "test":
            ctx.reply("+CGATT: (0,1)")
        elif cmd.kind == "set":
            cmd.check_count(1)
            want = cmd.int_arg(0, 0, 1)
            if want and (st.cfun != 1 or st.reg_stat not in (1, 5)):
                raise CommandError(CME_NO_NETWORK, "not registered")
            self.emu.set_attached(bool(want))
        else:
            raise CommandError()
        ctx.ok()

    def cgact(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGACT?`` → ``+CGACT: 1,<state>``; ``AT+CGACT=<state>[,<cid>]``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f"+CGACT: {st.cid},{int(st.pdn_active)}")
        elif cmd.kind == "test":
            ctx.reply("+CGACT: (0,1)")
        elif cmd.kind == "set":
            cmd.check_count(1, 2)
            want = cmd.int_arg(0, 0, 1)
            cid = cmd.int_arg(1, 1, 10, default=st.cid)
            if cid != st.cid:
                raise CommandError(CME_INCORRECT_PARAMETERS, f"no context {cid}")
            if want and not st.attached:
                raise CommandError(CME_NO_NETWORK, "not attached")
            self.emu.set_pdn(bool(want))
        else:
            raise CommandError()
        ctx.ok()

    def cops(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+COPS?`` → ``+COPS: 0,0,"<operator>",9`` (9 = NB-IoT), ``+COPS: 0`` when not registered."""
        st = ctx.state
        if cmd.kind == "read":
            if st.reg_stat in (1, 5):
                ctx.reply(f'+COPS: 0,0,"{st.operator}",9')
            else:
                ctx.reply("+COPS: 0")
        elif cmd.kind == "test":
            ctx.reply(f'+COPS: (2,"{st.operator}","{st.operator}","46001",9),,(0-4),(0-2)')
        elif cmd.kind == "set":
            cmd.arg(0).as_int(0, 4)
        else:
            raise CommandError()
        ctx.ok()

    def cgcontrdp(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGCONTRDP`` → ``+CGCONTRDP: 1,5,"<apn>","<ip>.<mask>"`` (8-octet form of note 3.1)."""
        st = ctx.state
        if cmd.kind == "test":
            ctx.reply(f"+CGCONTRDP: ({st.cid})")
            ctx.ok()
            return
        if cmd.kind == "set":
            cmd.check_count(1)
            if cmd.int_arg(0, 1, 10) != st.cid:
                ctx.ok()
                return
        elif cmd.kind != "exec":
            raise CommandError()
        if st.pdn_active:
            ctx.reply(f'+CGCONTRDP: {st.cid},5,"{st.apn}","{st.local_ip}.{st.subnet_mask}"')
        ctx.ok()

    def mcgdefcont(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT*MCGDEFCONT="IP","<apn>"[,"<user>","<pwd>"]``, only at ``AT+CFUN=0`` (note 3.2)."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f'*MCGDEFCONT: "{st.pdp_type}","{st.apn}","{st.apn_user}","{st.apn_password}"')
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply('*MCGDEFCONT: ("IP","IPV6","IPV4V6","Non-IP"),(0-99),(0-99),(0-99)')
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError()
        cmd.check_count(2, 4)
        pdp = PDP_TYPES.get(cmd.str_arg(0).upper())
        if pdp is None:
            raise ParseError(f"unknown PDP type {cmd.arg(0).text!r}")
        apn = cmd.str_arg(1, default="")
        if len(apn) > 99:
            raise ParseError("APN too long")
        if st.cfun != 0:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "*MCGDEFCONT needs AT+CFUN=0")
        st.pdp_type = pdp
        st.apn = apn
        st.apn_user = cmd.str_arg(2, default="")
        st.apn_password = cmd.str_arg(3, default="")
        ctx.ok()

    def cfun(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CFUN=0`` (``+CPIN: NOT READY`` before ``OK``), ``=1`` (``+CPIN: READY`` after), ``=1,1``
        (reset); ``AT+CFUN?``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f"+CFUN: {st.cfun}")
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply("+CFUN: (0,1),(0,1)")
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError()
        cmd.check_count(1, 2)
        fun = cmd.arg(0).as_int()
        if fun not in (0, 1):
            raise ParseError(f"CFUN {fun} not supported")
        rst = cmd.int_arg(1, 0, 1, default=0)
        if rst:
            ctx.ok()
            self.emu.reboot()
            return
        if fun == 0:
            if st.cfun != 0:
                self.emu.radio_off()
                ctx.reply("+CPIN: NOT READY")
            ctx.ok()
        else:
            ctx.ok()
            self.emu.radio_on()

    # ------------------------------------------------------------------------------------------- power

    def cpsms(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CPSMS=<mode>[,,,"<T3412ext>","<T3324>"]`` / ``AT+CPSMS?``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f'+CPSMS: {st.psm_mode},,,"{st.psm_tau}","{st.psm_active}"')
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply('+CPSMS: (0-2),,,("00000000"-"11111111"),("00000000"-"11111111")')
            ctx.ok()
            return
        if cmd.kind == "exec":
            mode, tau, act = 0, st.psm_tau, st.psm_active
        elif cmd.kind == "set":
            cmd.check_count(1, 5)
            mode = cmd.int_arg(0, 0, 2)
            tau = _bits(cmd, 3, st.psm_tau)
            act = _bits(cmd, 4, st.psm_active)
        else:
            raise CommandError()
        if mode == 2:
            default = type(st)()
            mode, tau, act = 0, default.psm_tau, default.psm_active
        st.psm_mode, st.psm_tau, st.psm_active = mode, tau, act
        ctx.ok()
        self.emu.psm_settings_changed()

    def cpsmstatus(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CPSMSTATUS=<0|1>`` switches the ``+CPSMSTATUS`` URCs; ``?`` → ``+CPSMSTATUS: <n>``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f"+CPSMSTATUS: {int(st.cpsmstatus_urc)}")
        elif cmd.kind == "test":
            ctx.reply("+CPSMSTATUS: (0,1)")
        elif cmd.kind == "set":
            cmd.check_count(1)
            st.cpsmstatus_urc = bool(cmd.int_arg(0, 0, 1))
        else:
            raise CommandError()
        ctx.ok()

    def retention(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+RETENTION=<0|1>`` / ``AT+RETENTION?`` (note 5.10)."""
        reply_setting(ctx, cmd, ctx.state, "retention")

    def ceng(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CENG?``: one serving-cell line and one neighbour line (AT_NOTES field order)."""
        st = ctx.state
        if cmd.kind == "set":
            cmd.check_count(1)
            st.extra["ceng_mode"] = cmd.int_arg(0, 0, 1)
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply("+CENG: (0,1)")
            ctx.ok()
            return
        if cmd.kind != "read":
            raise CommandError()
        if st.cfun == 1 and st.reg_stat in (1, 5) and st.csq != 99:
            rssi = -113 + 2 * st.csq
            rsrp = rssi - 10
            ctx.reply(
                f'+CENG: 3683,0,129,"{self.emu.cell_id[1:]}",{rsrp},-10,{rssi},12,8,"{self.emu.tac}",0,23,'
                f"{rsrp}",
                f"+CENG: 3683,0,130,{rsrp - 8}",
            )
        ctx.ok()

    def cbc(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CBC`` → ``+CBC: 0,85,3800`` (SIMCom 3-field form)."""
        if cmd.kind == "test":
            ctx.reply("+CBC: (0-2),(0-100),(3000-4500)")
        elif cmd.kind == "exec":
            ctx.reply("+CBC: 0,85,3800")
        else:
            raise CommandError()
        ctx.ok()

    def cclk(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CCLK?`` → ``+CCLK: "yy/MM/dd,hh:mm:ss+00"`` (network time, UTC)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "read":
            raise CommandError()
        now = datetime.datetime.now(datetime.UTC)
        ctx.reply(now.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"'))
        ctx.ok()

    def ipr(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+IPR=<rate>`` / ``AT+IPR?`` → ``+IPR: <rate>``."""
        st = ctx.state
        if cmd.kind == "read":
            ctx.reply(f"+IPR: {st.ipr}")
        elif cmd.kind == "test":
            ctx.reply("+IPR: (" + ",".join(str(b) for b in BAUD_RATES) + ")")
        elif cmd.kind == "set":
            cmd.check_count(1)
            rate = cmd.int_arg(0)
            if rate not in BAUD_RATES:
                raise ParseError(f"unsupported baud rate {rate}")
            st.ipr = rate
        else:
            raise CommandError()
        ctx.ok()

    # --------------------------------------------------------------------------------------- DNS, ping

    def cdnsgip(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CDNSGIP="<host>"``: ``OK``, then ``+CDNSGIP: 1,"<host>","<ip>"[,...]`` or
        ``+CDNSGIP: 0,8``. An IP literal answers plain ``ERROR`` (AT_NOTES 1.2)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError()
        cmd.check_count(1)
        name = cmd.str_arg(0).strip()
        if not name or is_ip(name):
            raise CommandError()
        ctx.require_service()
        ips = ctx.net.resolve(name)
        ctx.ok()
        if ips:
            quoted = ",".join(f'"{ip}"' for ip in ips)
            ctx.call_later(DNS_DELAY, lambda: ctx.urc(f'+CDNSGIP: 1,"{name}",{quoted}'))
        else:
            ctx.call_later(DNS_DELAY, lambda: ctx.urc("+CDNSGIP: 0,8"))

    def cipping(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPPING="<ip>"[,<retries 1-100>[,<size 0-5120>[,<timeout 1-600 (100 ms)>]]]``: ``OK``, then
        one ``+CIPPING: <n>,<ip>,<rtt 100ms>,<ttl>`` per reply; a timeout reports ``<timeout>,0`` (ttl 0)."""
        if cmd.kind == "test":
            ctx.reply("+CIPPING: (1-100),(0-5120),(1-600)")
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError()
        cmd.check_count(1, 4)
        target = cmd.str_arg(0).strip()
        retries = cmd.int_arg(1, 1, 100, default=4)
        cmd.int_arg(2, 0, 5120, default=32)
        timeout = cmd.int_arg(3, 1, 600, default=100)
        if is_ip(target):
            ip = target
        else:
            ips = ctx.net.resolve(target)
            if not ips:
                raise CommandError()
            ip = ips[0]
        ctx.require_service()
        ctx.ok()
        reachable = ctx.net.is_reachable(ip)
        ctx.spawn(self._ping(ctx, ip, retries, timeout, reachable))

    async def _ping(self, ctx: ModemContext, ip: str, retries: int, limit: int, reachable: bool) -> None:
        for n in range(1, retries + 1):
            if reachable:
                await asyncio.sleep(PING_INTERVAL)
                rtt = min(PING_RTT + (1 if n == 1 else 0), limit)
                ctx.urc(f"+CIPPING: {n},{ip},{rtt},{PING_TTL}")
            else:
                await asyncio.sleep(limit * 0.1 * self.emu.time_scale)
                ctx.urc(f"+CIPPING: {n},{ip},{limit},0")


def create_command_set(ctx: ModemContext) -> CommandSet:
    """Entry point used by the emulator core."""
    return BasicCommands(ctx)
