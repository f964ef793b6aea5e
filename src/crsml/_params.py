"""Parameter checks declared as scikit-learn declares them (``_parameter_constraints``), for the
settings objects that are not estimators: one checker for both, and an error a user reads as
one line naming the command-line option."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from crsml.errors import CrsmlError

_SKLEARN_MESSAGE = re.compile(r"The '(\w+)' parameter of \w+ must be (.*)\. Got (.*) instead\.", re.S)


def check_params(owner: object, constraints: Mapping[str, list[Any]]) -> None:
    """Check ``owner``'s attributes against ``constraints`` (scikit-learn's declarations: types,
    ``Interval``, ``StrOptions``, ``None``); a violation is a :class:`~crsml.errors.CrsmlError`
    naming the option (``--trials must be an int in the range [1, inf), not 0``)."""
    params = {name: getattr(owner, name) for name in constraints}
    try:
        validate_parameter_constraints(dict(constraints), params, type(owner).__name__)
    except InvalidParameterError as exc:
        m = _SKLEARN_MESSAGE.fullmatch(str(exc))
        if m is None:  # pragma: no cover - scikit-learn reworded its message
            raise CrsmlError(str(exc)) from None
        name, what, got = m.groups()
        raise CrsmlError(f"--{name.replace('_', '-')} must be {what}, not {got}") from None
