"""Basic, network, power and DNS/ping commands (application note chapters 3 and 4, public drivers' formats,
and the real-module captures; ``docs/emulator.md`` names the source of each choice).

Where the firmware prints things differently (``+CEREG`` layout, ``+CCLK``, the PSM grant), the profile
decides (``profiles.py``).
"""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import TYPE_CHECKING, Literal

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
from .radio import REQUESTED

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
_BITS4 = re.compile(r"^[01]{4}$")
#: 27.007 AcT-type of AT+CEDRXS: 5 = E-UTRAN (NB-S1 mode), the only one an NB-IoT module has.
EDRX_ACT = 5


def _bits(cmd: ParsedCommand, index: int, current: str) -> str:
    a = cmd.arg(index)
    if a.empty:
        return current
    if not _BITS8.match(a.text):
        raise ParseError(f"{cmd.name}: timer must be 8 bits, got {a.text!r}")
    return a.text


class BasicCommands(CommandSet):
    """AT, ATE, ATI, identification (CGMI/CGMM/CGMR/CGSN/CIMI/CCID, GSV), CMEE, CPIN, CSQ, registration
    (CREG/CGREG/CEREG), CGATT/CGACT, COPS, CGCONTRDP, *MCGDEFCONT, CFUN, CPSMS, CPSMSTATUS, CEDRXS,
    CEDRXRDP, CSCLK, CENG, CBC, CCLK, IPR, RETENTION, CBAND, CDNSCFG, CDNSGIP, CIPPING."""

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
            "+GSV": self.gsv,
            "+CIMI": self.cimi,
            "+CCID": self.ccid,
            "+CMEE": self.cmee,
            "+CPIN": self.cpin,
            "+CSQ": self.csq,
            "+CREG": self.creg,
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
            "+CEDRXS": self.cedrxs,
            "+CEDRXRDP": self.cedrxrdp,
            "+CSCLK": self.csclk,
            "+CENG": self.ceng,
            "+CBC": self.cbc,
            "+CCLK": self.cclk,
            "+IPR": self.ipr,
            "+RETENTION": self.retention,
            "+CDNSGIP": self.cdnsgip,
            "+CDNSCFG": self.cdnscfg,
            "+CBAND": self.cband,
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

    def gsv(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+GSV``: manufacturer, model and ``Revision:<rev>`` (no space after the colon), one block.

        A SIM7020G printed ``SIMCOM_Ltd`` / ``SIM7020G`` / ``Revision:1752B02SIM7020G`` (Edragon's AT
        notes, docs/emulator.md capture 4).
        """
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError()
        ctx.reply_block(self.emu.manufacturer, self.emu.model, f"Revision:{self.emu.revision}")
        ctx.ok()

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

    def _registration(
        self, ctx: ModemContext, cmd: ParsedCommand, command: Literal["+CREG", "+CGREG", "+CEREG"], hi: int
    ) -> None:
        """``AT<command>=<n>`` (0..hi) sets the URC mode; ``AT<command>?`` → ``<command>: <n>,<stat>...``."""
        st = ctx.state
        attr = command[1:].lower() + "_n"  # creg_n, cgreg_n, cereg_n
        if cmd.kind == "set":
            cmd.check_count(1)
            setattr(st, attr, cmd.int_arg(0, 0, hi))
        elif cmd.kind == "read":
            n = getattr(st, attr)
            ctx.reply(f"{command}: {n},{st.reg_stat}{self.emu.registration_tail(command, n)}")
        elif cmd.kind == "test":
            ctx.reply(f"{command}: (0-{hi})")
        else:
            raise CommandError()
        ctx.ok()

    def creg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CREG=<n>`` (0-2) / ``AT+CREG?`` → ``+CREG: <n>,<stat>[,"<lac>","<ci>",9]`` (no extra field:
        a SIM7020 prints ``+CREG: 1,"00A0","000A700B",9`` next to ``+CGREG: 1,...,9,"00"``)."""
        self._registration(ctx, cmd, "+CREG", 2)

    def cgreg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CGREG=<n>`` (0-5) / ``AT+CGREG?``: the layout of ``+CEREG``."""
        self._registration(ctx, cmd, "+CGREG", 5)

    def cereg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CEREG=<n>`` (0-5) / ``AT+CEREG?``: location from n=2, the SIM7020's ``"00"`` after
        ``<AcT>`` (profile), causes for n=3/5, the granted Active-Time and periodic TAU for n=4/5."""
        self._registration(ctx, cmd, "+CEREG", 5)

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
        """``AT+COPS?`` → ``+COPS: <mode>,<format>,"<operator>",9`` (9 = NB-IoT; note 3.1:
        ``+COPS: 0,0,"CHN-UNICOM",9``), ``+COPS: <mode>`` when not registered. 27.007 7.3 set forms:
        ``AT+COPS=0`` automatic, ``=1,<format>,"<oper>"`` manual (an unknown network: ``+CME ERROR: 30``),
        ``=2`` deregister, ``=3,<format>`` the answer format only, ``=4,…`` manual, else automatic."""
        st = ctx.state
        if cmd.kind == "read":
            if st.reg_stat in (1, 5):
                name = self.emu.plmn if st.cops_format == 2 else st.operator
                ctx.reply(f'+COPS: {st.cops_mode},{st.cops_format},"{name}",9')
            else:
                ctx.reply(f"+COPS: {st.cops_mode}")
        elif cmd.kind == "test":
            ctx.reply(f'+COPS: (2,"{st.operator}","{st.operator}","{self.emu.plmn}",9),,(0-4),(0-2)')
        elif cmd.kind == "set":
            cmd.check_count(1, 4)
            mode = cmd.int_arg(0, 0, 4)
            fmt = cmd.int_arg(1, 0, 2, default=st.cops_format)
            if mode == 3:
                st.cops_format = fmt
            elif mode in (1, 4):
                oper = cmd.str_arg(2)
                known = {st.operator, self.emu.plmn}
                if oper not in known:
                    if mode == 1:
                        raise CommandError(CME_NO_NETWORK, "no network service")
                    self._select(0, "")
                else:
                    st.cops_format = fmt
                    self._select(1, self.emu.plmn)
            else:
                self._select(mode, "")
        else:
            raise CommandError()
        ctx.ok()

    def _select(self, mode: int, plmn: str) -> None:
        st = self.emu.state
        changed = (st.cops_mode, st.cops_plmn) != (mode, plmn)
        st.cops_mode, st.cops_plmn = mode, plmn
        if mode == 2:
            self.emu.radio_off_network()
        elif changed or st.reg_stat not in (1, 5):
            self.emu.register_again()

    def cband(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CBAND=<band>[,<band>…]`` locks the bands (drivers send ``AT+CBAND=1,3,5,8``,
        ``AT+CBAND=20``); a band the variant lacks is ``+CME ERROR: 50``. ``AT+CBAND?`` → ``+CBAND: 3,8,20``;
        ``AT+CBAND=?`` → ``+CBAND: (<the variant's bands>)``. A changed lock makes the module search again
        and register only if its cell's band is allowed."""
        st = ctx.state
        supported = self.emu.supported_bands()
        if cmd.kind == "read":
            locked = st.bands if st.bands is not None else supported
            ctx.reply("+CBAND: " + ",".join(map(str, locked)))
        elif cmd.kind == "test":
            ctx.reply("+CBAND: (" + ",".join(map(str, supported)) + ")")
        elif cmd.kind == "set":
            cmd.check_count(1, len(supported))
            new = tuple(sorted({cmd.int_arg(i) for i in range(len(cmd.args))}))
            if any(b not in supported for b in new):
                raise CommandError(CME_INCORRECT_PARAMETERS, "band not supported")
            changed = new != (st.bands if st.bands is not None else supported)
            st.bands = new
            ctx.ok()
            if changed:
                self.emu.register_again()
            return
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
        """``AT+CPSMS=<mode>[,,,"<T3412ext>","<T3324>"]`` / ``AT+CPSMS?`` (the requested timers).

        The network answers a request with its grant (``Emulator.psm_settings_changed``). Turning PSM off
        while it was in use answers ``OK`` then ``+CPSMSTATUS: "EXIT PSM"`` (profile ``psm_off_exit_urc``).
        """
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
        was_on = st.psm_mode == 1
        st.psm_mode, st.psm_tau, st.psm_active = mode, tau, act
        ctx.ok()
        if was_on and mode == 0 and ctx.profile.psm_off_exit_urc and st.cpsmstatus_urc:
            ctx.urc('+CPSMSTATUS: "EXIT PSM"')
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

    def cedrxs(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CEDRXS=<mode>[,5[,"<eDRX bits>"]]`` (27.007: 0 off, 1 on, 2 on with ``+CEDRXP`` URCs, 3 off
        and back to defaults) / ``AT+CEDRXS?`` → ``+CEDRXS: 5,"<bits>"`` while on, nothing while off."""
        st = ctx.state
        if cmd.kind == "read":
            if st.edrx_mode in (1, 2):
                ctx.reply(f'+CEDRXS: {EDRX_ACT},"{st.edrx_value}"')
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply(f'+CEDRXS: (0-3),({EDRX_ACT}),("0000"-"1111")')
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError()
        cmd.check_count(1, 3)
        mode = cmd.int_arg(0, 0, 3)
        cmd.int_arg(1, EDRX_ACT, EDRX_ACT, default=EDRX_ACT)
        value = cmd.arg(2)
        if not value.empty and not _BITS4.match(value.text):
            raise ParseError(f"AT+CEDRXS: eDRX value must be 4 bits, got {value.text!r}")
        if mode == 3:
            st.edrx_mode, st.edrx_value = 0, "0000"
        else:
            st.edrx_mode = mode
            if not value.empty:
                st.edrx_value = value.text
        ctx.ok()
        if mode == 2 and st.reg_stat in (1, 5):
            granted = self._edrx_granted()
            if granted is not None:
                ctx.urc(f'+CEDRXP: {EDRX_ACT},"{st.edrx_value}","{granted[0]}","{granted[1]}"')

    def _edrx_granted(self) -> tuple[str, str] | None:
        """(network eDRX value, paging time window), or None when eDRX is not in use."""
        st, grant = self.emu.state, self.emu.grant
        if st.edrx_mode not in (1, 2) or grant.edrx is None:
            return None
        return (st.edrx_value if grant.edrx == REQUESTED else grant.edrx), grant.paging_time_window

    def cedrxrdp(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CEDRXRDP`` → ``+CEDRXRDP: 5,"<requested>","<granted>","<PTW>"``, or ``+CEDRXRDP: 0`` when
        eDRX is not in use (SIMCom's eDRX note: ``+CEDRXRDP: 5,"0010","0010","0011"``)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError()
        st = ctx.state
        granted = self._edrx_granted() if st.reg_stat in (1, 5) else None
        if granted is None:
            ctx.reply("+CEDRXRDP: 0")
        else:
            ctx.reply(f'+CEDRXRDP: {EDRX_ACT},"{st.edrx_value}","{granted[0]}","{granted[1]}"')
        ctx.ok()

    def csclk(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSCLK=<0|1|2>`` / ``AT+CSCLK?`` → ``+CSCLK: <n>`` (UART sleep mode; stored only)."""
        reply_setting(ctx, cmd, ctx.state, "csclk", test="(0-2)", hi=2)

    def ceng(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CENG?``: the serving-cell line and one line per neighbour, as one block.

        ``+CENG: <earfcn>,<offset>,<pci>,"<ci>",<rsrp>,<rsrq>,<rssi>,<snr>,<band>,"<tac>",<ecl>,<tx>,
        <re_rsrp>`` (13 fields; ``<tx>`` empty while idle) then ``+CENG: <earfcn>,<offset>,<pci>,<rsrp>``
        per neighbour, no empty line between them (a SIM7020 on a live network, docs/emulator.md capture 1).
        """
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
            c = self.emu.cell
            rssi = -113 + 2 * st.csq if c.rssi is None else c.rssi
            rsrp = rssi - 10 if c.rsrp is None else c.rsrp
            re_rsrp = rsrp if c.re_rsrp is None else c.re_rsrp
            tx = "" if c.tx_power is None else str(c.tx_power)
            ctx.reply_block(
                f'+CENG: {c.earfcn},{c.earfcn_offset},{c.pci},"{c.cell_id}",{rsrp},{c.rsrq},{rssi},{c.snr},'
                f'{c.band},"{c.tac}",{c.ecl},{tx},{re_rsrp}',
                *(f"+CENG: {n.earfcn},{n.earfcn_offset},{n.pci},{n.rsrp}" for n in c.neighbours),
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
        """``AT+CCLK?``: network time, local to ``Emulator(timezone=<quarter hours>)``, in the profile's form:
        ``+CCLK: 24/04/30,07:49:36+12`` (SIM7020: unquoted), ``+CCLK: "2026/03/09,08:41:39+12"`` (SIM7028),
        ``+CCLK: "24/04/30,07:49:36+12"`` (27.007, the note profile)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "read":
            raise CommandError()
        quarters = self.emu.timezone
        now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=15 * quarters)
        zone = f"{'-' if quarters < 0 else '+'}{abs(quarters):02d}"
        style = ctx.profile.clock
        if style == "sim7020":
            ctx.reply(now.strftime(f"+CCLK: %y/%m/%d,%H:%M:%S{zone}"))
        elif style == "sim7028":
            ctx.reply(now.strftime(f'+CCLK: "%Y/%m/%d,%H:%M:%S{zone}"'))
        else:
            ctx.reply(now.strftime(f'+CCLK: "%y/%m/%d,%H:%M:%S{zone}"'))
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

    def cdnscfg(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CDNSCFG=<primary>[,<secondary>]`` (quoted or not, as drivers send it) / ``AT+CDNSCFG?`` →
        ``PrimaryDns: <ip>`` and ``SecondaryDns: <ip>`` (``0.0.0.0`` for none: a network that hands out
        no DNS server)."""
        st = ctx.state
        if cmd.kind == "read":
            primary, secondary = self.emu.dns_in_effect()
            ctx.reply(f"PrimaryDns: {primary}", f"SecondaryDns: {secondary}")
        elif cmd.kind == "test":
            ctx.reply('+CDNSCFG: ("pri_dns"),("sec_dns")')
        elif cmd.kind == "set":
            cmd.check_count(1, 2)
            servers = [cmd.str_arg(0).strip(), cmd.str_arg(1, default="0.0.0.0").strip() or "0.0.0.0"]
            if not all(is_ip(s) and ":" not in s for s in servers):
                raise CommandError(CME_INCORRECT_PARAMETERS, "not an IPv4 address")
            st.dns = (servers[0], servers[1])
        else:
            raise CommandError()
        ctx.ok()

    def cdnsgip(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CDNSGIP="<host>"``: ``OK``, then ``+CDNSGIP: 1,"<host>","<ip>"[,...]`` or
        ``+CDNSGIP: 0,8`` (unknown host). An IP literal answers plain ``ERROR`` (OneOS's SIM7020 driver).
        Without a DNS server that answers (none in ``AT+CDNSCFG?``, or each down: ``dns_server_down``) the
        result is ``+CDNSGIP: 0,3`` (network error)."""
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
        servers = [s for s in self.emu.dns_in_effect() if s != "0.0.0.0" and s not in self.emu.dead_dns]
        ips = ctx.net.resolve(name)
        ctx.ok()
        if not servers:
            ctx.call_later(DNS_DELAY, lambda: ctx.urc("+CDNSGIP: 0,3"))
        elif ips:
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
