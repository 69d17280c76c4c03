"""
What the two streams of a dueling network learned, and pictures of it.

    from sb3_dueling.explain import explain
    explanation = explain(model, observations)

The command ``python -m sb3_dueling.explain`` draws them for whole episodes (see its ``--help``).
"""

from sb3_dueling.explain.explanation import Explanation, dueling_network, explain

__all__ = ["Explanation", "dueling_network", "explain"]
