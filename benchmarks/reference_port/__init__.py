"""The benchmark's yardstick: a plain port of the official RITM NoBRS predictor (see ``nobrs``),
and ``verify`` to check it against the official outputs stored in shared/ref."""
from reference_port.nobrs import RefClick, ReferencePredictor
from reference_port.verify import verify

__all__ = ["ReferencePredictor", "RefClick", "verify"]
