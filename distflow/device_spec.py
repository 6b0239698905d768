"""`tf.DeviceSpec`: a parsed device name (job, replica, task, device type and index),
as TF's; `tf.device` accepts one (CPU names only, see `distflow.config.device`)."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"^(?P<key>job|replica|task|device):(?P<value>.+)$")
_FIELDS = ("job", "replica", "task", "device_type", "device_index")


class DeviceSpec:
    """A device name split into its parts; unset parts are None.

    Args:
        job: the job name ("worker", "ps", ...).
        replica, task: integer ids.
        device_type: "CPU", "GPU", ... (upper-cased, as TF).
        device_index: the device's index, or None for any.
    """

    __slots__ = ("_parts",)

    def __init__(self, job: str | None = None, replica: int | None = None,
                 task: int | None = None, device_type: str | None = None,
                 device_index: int | None = None):
        self._parts = (job, None if replica is None else int(replica),
                       None if task is None else int(task),
                       device_type.upper() if device_type else None,
                       None if device_index is None else int(device_index))

    job = property(lambda self: self._parts[0])
    replica = property(lambda self: self._parts[1])
    task = property(lambda self: self._parts[2])
    device_type = property(lambda self: self._parts[3])
    device_index = property(lambda self: self._parts[4])

    @classmethod
    def from_string(cls, spec: str) -> DeviceSpec:
        """Parses '/job:worker/replica:0/task:1/device:CPU:0' (any part may be left out;
        'CPU:0' and '/cpu:0' work too)."""
        fields: dict[str, Any] = {}
        for piece in (p for p in str(spec).split("/") if p):
            m = _PART.match(piece)
            key, value = (m.group("key"), m.group("value")) if m else ("device", piece)
            if key == "device":
                kind, _, index = value.partition(":")
                fields["device_type"] = kind
                fields["device_index"] = None if index in ("", "*") else _int(index, spec)
            elif key == "job":
                fields["job"] = value
            else:
                fields[key] = _int(value, spec)
        return cls(**fields)

    def to_string(self) -> str:
        """The canonical name, e.g. '/job:worker/task:1/device:CPU:0'."""
        out = "".join(f"/{k}:{v}" for k, v in zip(("job", "replica", "task"), self._parts)
                      if v is not None)
        if self.device_type is not None:
            index = "*" if self.device_index is None else self.device_index
            out += f"/device:{self.device_type}:{index}"
        return out

    def replace(self, **kwargs: Any) -> DeviceSpec:
        """A copy with the given parts changed."""
        unknown = set(kwargs) - set(_FIELDS)
        if unknown:
            raise ValueError(f"DeviceSpec has no part {sorted(unknown)}; parts are {_FIELDS}.")
        return DeviceSpec(**{**dict(zip(_FIELDS, self._parts)), **kwargs})

    def make_merged_spec(self, dev: DeviceSpec) -> DeviceSpec:
        """This spec with the parts `dev` sets taking precedence."""
        return self.replace(**{k: v for k, v in zip(_FIELDS, dev._parts) if v is not None})

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"<DeviceSpec {self.to_string() or '(empty)'}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeviceSpec) and self._parts == other._parts

    def __hash__(self) -> int:
        return hash(self._parts)


def _int(value: str, spec: Any) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Invalid device name {spec!r}: {value!r} is not an integer id. "
                         "Expected e.g. '/job:worker/task:0/device:CPU:0'.") from None
