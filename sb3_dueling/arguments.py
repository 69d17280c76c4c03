"""
The names of arguments checked against the constructors that take them, with messages that name the
bad key and say where it belongs: for the learners' keyword arguments and ``policy_kwargs``, and for the
Zoo's hyperparameter files (:mod:`sb3_dueling.user_input`).
"""

import difflib
import functools
import inspect
from collections.abc import Callable, Collection, Iterable
from typing import Any, ParamSpec

P = ParamSpec("P")
#: The arguments of a policy's constructor that the learner gives, not the user
POLICY_SETUP_ARGUMENTS = ("observation_space", "action_space", "lr_schedule")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest of ``choices`` to ``word``, or nothing when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def constructor_arguments(cls: type, excluded: Iterable[str]) -> set[str] | None:
    """The public arguments of the constructor of ``cls`` but ``excluded``; ``None`` when it takes any (``**kwargs``)."""
    parameters = inspect.signature(cls).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return {p.name for p in parameters if p.name not in set(excluded) and not p.name.startswith("_")}


def policy_arguments(policy: type) -> set[str] | None:
    """The arguments a user may give a policy class in ``policy_kwargs``; ``None`` when it takes any."""
    return constructor_arguments(policy, POLICY_SETUP_ARGUMENTS)


def unknown_argument(
    keys: Iterable[str], allowed: Collection[str], owner: str, of_policy: Collection[str] = (), example: str = ""
) -> str | None:
    """
    What is wrong with the first of ``keys`` that is not ``allowed``, or ``None`` when all are.

    :param keys: The names given
    :param allowed: The names the owner takes
    :param owner: What a name should be, for the message (``a hyperparameter of dueling_dqn``)
    :param of_policy: The arguments of the owner's policy: such a name belongs in ``policy_kwargs``
    :param example: How to give a policy argument, ``{key}`` standing for its name
    """
    for key in sorted(set(keys) - set(allowed)):
        if key in of_policy:
            where = example.format(key=key)
            return f"{key!r} is not {owner} but an argument of its policy: give it in policy_kwargs, as in {where}"
        return f"{key!r} is not {owner}{did_you_mean(key, allowed)}"
    return None


def learner_argument_problem(cls: type, names: Collection[str], given: dict[str, Any]) -> str | None:
    """
    What is wrong with the names of a learner's keyword arguments or of its ``policy_kwargs``, or ``None``.

    :param cls: The learner's class (with ``policy_aliases``)
    :param names: The names of the keyword arguments given
    :param given: The arguments that its constructor takes, by name (``policy``, ``policy_kwargs``...)
    """
    policy = given.get("policy")
    policy_class = cls.policy_aliases.get(policy) if isinstance(policy, str) else policy  # type: ignore[attr-defined]
    # None: an unknown alias (SB3 names it), or a policy that takes any keyword argument
    of_policy = policy_arguments(policy_class) if isinstance(policy_class, type) else None
    allowed = inspect.signature(cls).parameters
    example = "policy_kwargs=dict({key}=...)"
    problem = unknown_argument(names, allowed, f"an argument of {cls.__name__}", of_policy or (), example)
    policy_kwargs = given.get("policy_kwargs")
    if problem is not None or of_policy is None or not isinstance(policy_kwargs, dict):
        return problem
    owner = f"an argument of {policy_class.__name__} in policy_kwargs"  # type: ignore[union-attr]
    problem = unknown_argument(policy_kwargs, of_policy, owner)
    return None if problem is None else f"{problem}; it takes {', '.join(sorted(of_policy))}"


def checked_arguments(init: Callable[P, None]) -> Callable[P, None]:
    """
    A learner's ``__init__`` that first checks the names of its keyword arguments and of the keys of its
    ``policy_kwargs``, and raises a ``TypeError`` that names a bad one and where it belongs (Python's own
    "unexpected keyword argument" does not say that ``aggregation`` goes in ``policy_kwargs``).
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def init_with_checked_arguments(*args: P.args, **kwargs: P.kwargs) -> None:
        known = {name: value for name, value in kwargs.items() if name in signature.parameters}
        try:
            given = signature.bind(*args, **known).arguments
        except TypeError:
            return init(*args, **kwargs)  # a missing argument: Python's message says it
        problem = learner_argument_problem(type(args[0]), list(kwargs), given)
        if problem is not None:
            raise TypeError(problem)
        return init(*args, **kwargs)

    return init_with_checked_arguments
