"""Property-based testing for jetwire types: ``pip install jetwire[testing]``.

``strategy(T)`` is a hypothesis strategy for the values of any type jetwire can encode, built
from the codec's own plan so its bounds are exact::

    from hypothesis import given
    from jetwire.testing import strategy

    @given(strategy(Twalk))
    def test_round_trip(msg: Twalk) -> None:
        assert Twalk.decode(msg.encode()) == msg

Fields written by your own code (``With(codec)``, ``As(...)``) need ``register_strategy``.
"""

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "jetwire.testing needs hypothesis: pip install 'jetwire[testing]'"
    ) from exc

from .strategies import register_strategy, strategy, urls

__all__ = ["strategy", "register_strategy", "urls"]
