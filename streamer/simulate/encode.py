"""Readings to JSON bytes, fast: per-meter byte templates plus one orjson call per slot.

The constant parts of each meter's message (id, field names, meter type, quality) are built
once; per slot only the timestamp (two forms) and the numbers change, and orjson formats all
numbers of a slot in one call. The output is byte-identical to ``orjson.dumps`` of the dict
``{"meter_id", "ts", "kwh" | "register_kwh", "meter_type", ["quality"]}``.

Register meters send ``register_kwh``, a cumulative import register kept in integer Wh in the
encoder, so that consecutive register values differ by exactly the interval energy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import orjson

from streamer.simulate.errors import SimulationError
from streamer.simulate.fleet import FleetModel
from streamer.simulate.wire import Message, rfc3339

F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]


__all__ = ["ReadingEncoder", "rfc3339"]


class ReadingEncoder:
    """Encodes one slot of a fleet at a time; holds the register meters' cumulative values."""

    def __init__(self, model: FleetModel) -> None:
        self.model = model
        self.keys: list[bytes] = [str(meter_id).encode() for meter_id in model.meter_ids]
        self._uses_epoch_ms: list[bool] = model.uses_epoch_ms.tolist()
        self._heads = [b'{"meter_id":' + orjson.dumps(k.decode()) + b',"ts":' for k in self.keys]
        self._energy_keys = [
            b',"register_kwh":' if register else b',"kwh":' for register in model.is_register
        ]
        self._tails: list[tuple[bytes, bytes]] = []
        for meter_type, sends_quality in zip(
            model.meter_types.tolist(), model.profiles.sends_quality.tolist(), strict=True
        ):
            base = b',"meter_type":' + orjson.dumps(meter_type)
            if sends_quality:
                self._tails.append(
                    (base + b',"quality":"actual"}', base + b',"quality":"estimated"}')
                )
            else:
                self._tails.append((base + b"}", base + b"}"))
        self._is_register = model.is_register.copy()
        self._register_wh = model.profiles.initial_register_wh.copy()
        self._last_slot_end_ms: int | None = None

    @property
    def register_kwh(self) -> F64:
        """Current register values (kWh) of all meters (meaningful for register meters)."""
        out: F64 = self._register_wh / 1000.0
        return out

    def encode_slot(self, slot_end_ms: int, kwh: F64, estimated: BOOL | None = None) -> list[bytes]:
        """JSON values of every meter, in meter order (keys: :attr:`keys`), for one slot.

        ``kwh`` (n_meters,) is the interval energy (whole Wh, as from ``FleetModel.load_kwh``);
        slots must be encoded in increasing time order (register meters accumulate).
        """
        return [value for _key, value in self.encode_messages(slot_end_ms, kwh, estimated)]

    def encode_messages(
        self, slot_end_ms: int, kwh: F64, estimated: BOOL | None = None
    ) -> list[Message]:
        """As :meth:`encode_slot`, paired with the keys: ``(meter id bytes, JSON value)``."""
        n = self.model.n_meters
        energy = np.asarray(kwh, dtype=np.float64)
        if energy.shape != (n,):
            raise SimulationError(
                f"kwh has shape {energy.shape}; pass one value per meter, shape ({n},)"
            )
        if self._last_slot_end_ms is not None and slot_end_ms <= self._last_slot_end_ms:
            raise SimulationError(
                f"slot {slot_end_ms} ms is not after the last encoded slot "
                f"{self._last_slot_end_ms} ms; encode slots in time order (registers accumulate)"
            )
        self._last_slot_end_ms = slot_end_ms
        wh = np.rint(energy * 1000.0).astype(np.int64)
        if np.any(wh[self._is_register] < 0):
            raise SimulationError(
                "a register meter has negative interval energy; registers only count import "
                "(register meters must be consumption meters)"
            )
        self._register_wh += np.where(self._is_register, wh, 0)
        values = np.where(self._is_register, self._register_wh / 1000.0, energy)
        numbers = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        ts_text = orjson.dumps(rfc3339(slot_end_ms))
        ts_epoch = str(slot_end_ms).encode()
        flags: list[bool] = [False] * n if estimated is None else np.asarray(estimated).tolist()
        return [
            (key, b"".join((head, ts_epoch if epoch else ts_text, energy_key, number, tail[flag])))
            for key, head, epoch, energy_key, number, tail, flag in zip(
                self.keys,
                self._heads,
                self._uses_epoch_ms,
                self._energy_keys,
                numbers,
                self._tails,
                flags,
                strict=True,
            )
        ]
