"""Third-party peers: pyModbusTCP's server playing the PLC for our client, and Debian's
mbpoll playing the PC against our simulator (skipped where mbpoll is not installed)."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading

import pytest
from plc_helpers import free_port, wait_for

from hardware.errors import PlcError
from hardware.plc.client import PlcClient, TriggerTracker
from hardware.plc.registers import (
    PcStatus,
    PlcBlock,
    PlcStatus,
    PlcVerdict,
    RegisterMap,
)

pyModbusTCP_server = pytest.importorskip("pyModbusTCP.server")


class RecordingHandler(pyModbusTCP_server.DataHandler):
    """pyModbusTCP's default data handler, plus a log of every register write request."""

    def __init__(self, data_bank) -> None:
        super().__init__(data_bank)
        self.writes: list[tuple[int, int, list[int]]] = []
        self.lock = threading.Lock()

    def write_h_regs(self, address, words_l, srv_info):
        with self.lock:
            self.writes.append((srv_info.recv_frame.pdu.func_code, address, list(words_l)))
        return super().write_h_regs(address, words_l, srv_info)


class ThirdPartyPlc:
    """A pyModbusTCP server on a free port that can be stopped and started again there."""

    def __init__(self) -> None:
        self.bank = pyModbusTCP_server.DataBank()
        self.handler = RecordingHandler(self.bank)
        self.port = 0
        self.server = None

    def start(self, port: int | None = None) -> None:
        for _ in range(5):
            self.port = port or free_port()
            self.server = pyModbusTCP_server.ModbusServer(
                host="127.0.0.1", port=self.port, no_block=True, data_hdl=self.handler)
            try:
                self.server.start()
                return
            except pyModbusTCP_server.ModbusServer.NetworkError:   # port taken meanwhile
                if port:
                    raise
        pytest.fail("could not start the pyModbusTCP server")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def third_party_plc():
    plc = ThirdPartyPlc()
    plc.start()
    yield plc.port, plc.bank, plc.handler
    plc.stop()


@pytest.fixture
def third_party_plc_ctl():
    plc = ThirdPartyPlc()
    plc.start()
    yield plc
    plc.stop()


@pytest.mark.parametrize("regmap", [RegisterMap(), RegisterMap(plc_base=200, pc_base=300,
                                                               word_order="little")],
                         ids=["default", "moved-little"])
def test_client_against_pymodbustcp_plc(third_party_plc, regmap):
    port, bank, handler = third_party_plc
    tracker = TriggerTracker()

    def plc_writes(block: PlcBlock) -> None:   # the test plays the PLC program
        bank.set_holding_registers(regmap.plc_base, regmap.encode_plc_block(block))

    plc_writes(PlcBlock(1, 41, 0x00ABCDEF, PlcStatus.AUTO | PlcStatus.GATE_READY))
    with PlcClient("127.0.0.1", port, regmap) as client:
        first = client.read_plc_block()
        assert (first.trig_seq, first.part_id) == (41, 0x00ABCDEF)
        assert first.status == PlcStatus.AUTO | PlcStatus.GATE_READY
        tracker.resync(first)                       # part 41 predates us: not answered
        expected = []
        for i, part_id in enumerate((0x00ABCDF0, 0x00ABCDF1, 0x7FFF0000)):
            plc_writes(PlcBlock(2 + i, 42 + i, part_id, PlcStatus.AUTO | PlcStatus.GATE_READY))
            (trig,) = tracker.observe(client.read_plc_block())
            verdict = PlcVerdict.NG if i == 1 else PlcVerdict.OK
            n_before = len(handler.writes)
            client.write_result(trig.result(verdict, 0.9125, defect_class=2 if i == 1 else 0))
            # ONE FC16 request carried offsets 1-6, with the contract's values.
            assert len(handler.writes) == n_before + 1
            fc, address, words = handler.writes[-1]
            assert (fc, address, len(words)) == (16, regmap.pc(1), 6)
            exp = [42 + i, *regmap.encode_u32(part_id), int(verdict), 913, 2 if i == 1 else 0]
            assert words == exp
            assert bank.get_holding_registers(regmap.pc(1), 6) == exp
            expected.append(exp)
        client.write_heartbeat(7)
        client.write_status(PcStatus.READY | PcStatus.MODEL_LOADED)
    assert bank.get_holding_registers(regmap.pc(0), 1) == [7]
    assert bank.get_holding_registers(regmap.pc(7), 1) == [3]
    assert [w[0] for w in handler.writes[-2:]] == [6, 6]      # PC_HEARTBEAT / PC_STATUS alone
    assert bank.get_holding_registers(regmap.plc_base, 5) == regmap.encode_plc_block(
        PlcBlock(4, 44, 0x7FFF0000, PlcStatus.AUTO | PlcStatus.GATE_READY))  # PLC block untouched


def test_third_party_plc_restart_reconnects(third_party_plc_ctl):
    """The pyModbusTCP server is stopped and started again on the same port with a reset
    PLC program: PlcError in the gap (no crash), reconnection, resync, nothing stale."""
    plc = third_party_plc_ctl
    plc.bank.set_holding_registers(0, [1, 5, 0, 9, 3])
    client = PlcClient("127.0.0.1", plc.port)
    tracker = TriggerTracker()
    tracker.resync(client.read_plc_block())
    plc.bank.set_holding_registers(0, [2, 6, 0, 10, 3])
    (trig,) = tracker.observe(client.read_plc_block())
    plc.stop()
    with pytest.raises(PlcError):
        client.write_result(trig.result(PlcVerdict.OK))          # gap: error, no crash
    plc.bank.set_holding_registers(0, [0, 0, 0, 0, 0])        # the PLC came back reset
    plc.bank.set_holding_registers(11, [0] * 6)
    plc.start(plc.port)
    assert wait_for(lambda: _try_read(client), timeout=10)
    assert client.connects == 2
    tracker.resync(client.read_plc_block())                   # new connection: resync
    assert tracker.observe(client.read_plc_block()) == []     # seq 6 is never answered now
    plc.bank.set_holding_registers(0, [1, 1, 0, 77, 3])
    (fresh,) = tracker.observe(client.read_plc_block())
    client.write_result(fresh.result(PlcVerdict.OK, 1.0))
    assert plc.bank.get_holding_registers(11, 6) == [1, 0, 77, 1, 1000, 0]
    client.close()


def _try_read(client) -> bool:
    try:
        client.read_plc_block()
        return True
    except Exception:  # noqa: BLE001
        return False


MBPOLL = shutil.which("mbpoll")


def _mbpoll(*args: str) -> str:
    out = subprocess.run([MBPOLL, "-m", "tcp", "-0", "-1", "-o", "2", *args],
                         check=False, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _values(text: str) -> dict[int, int]:
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", text, re.MULTILINE)}


@pytest.mark.skipif(MBPOLL is None, reason="Debian's mbpoll is not installed")
def test_mbpoll_reads_simulator_and_answers_as_pc(sim_factory):
    sim = sim_factory(rate=0, travel_s=0.5, part_id_start=0x00012345)
    seq, part_id = sim.trigger()
    common = ["-p", str(sim.port), "-a", "1"]
    regs = _values(_mbpoll(*common, "-t", "4", "-r", "0", "-c", "5", "127.0.0.1"))
    assert regs[1] == seq and (regs[2] << 16 | regs[3]) == part_id == 0x00012345
    assert regs[4] & PlcStatus.GATE_READY
    u32 = _values(_mbpoll(*common, "-t", "4:int", "-B", "-r", "2", "-c", "1", "127.0.0.1"))
    assert u32[2] == part_id
    # mbpoll as the PC: PC_HEARTBEAT twice (so the watchdog sees it move), then one result.
    for hb in (1, 2):
        _mbpoll(*common, "-t", "4", "-r", "10", "127.0.0.1", str(hb))
    _mbpoll(*common, "-t", "4", "-r", "11", "127.0.0.1",
            str(seq), str(part_id >> 16), str(part_id & 0xFFFF), "1", "990", "0")
    assert wait_for(lambda: len(sim.history()) == 1, timeout=10)
    c = sim.counters()
    assert c["answered"] == 1 and c["ok"] == 1 and c["partial_writes"] == 0
    # passed only if the PC heartbeat was alive for the whole trip; mbpoll does not keep
    # ticking, so the gate outcome is the watchdog's business: we check the match only.
    assert sim.history()[0]["verdict"] == "OK"
