"""CPU and memory amounts, as reservations, limits and node capacity."""

from pydantic import BaseModel, ConfigDict, Field


class Resources(BaseModel):
    """An amount of CPU (in cores, fractions allowed) and memory (in bytes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    memory: int = Field(default=0, ge=0, le=2**63 - 1, strict=True)  # strict: `false` is not 0 bytes; 64 bits as stored

    def fits_in(self, free: "Resources") -> bool:
        return self.cpus <= free.cpus + 1e-9 and self.memory <= free.memory

    def plus(self, other: "Resources") -> "Resources":
        return Resources(cpus=self.cpus + other.cpus, memory=self.memory + other.memory)

    def minus(self, other: "Resources") -> "Resources":
        return Resources(cpus=max(0.0, self.cpus - other.cpus), memory=max(0, self.memory - other.memory))
