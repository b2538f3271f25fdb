from dataclasses import dataclass


@dataclass(frozen=True)
class IdentityInput:
    kind: str
    value: str  # already normalised (customers.identities.normalise_identity)
    is_verified: bool = False
