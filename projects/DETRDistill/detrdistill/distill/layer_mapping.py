"""Which student decoder layer learns from which teacher decoder layer."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["map_decoder_layers", "LAYER_MAPPINGS"]

LAYER_MAPPINGS = ("last_aligned", "uniform")


def _round_half_up(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)`` with halves rounded up, in exact integer arithmetic."""
    return (2 * numerator + denominator) // (2 * denominator)


def map_decoder_layers(
    num_student: int, num_teacher: int, mapping: str | Sequence = "last_aligned"
) -> list[tuple[int, int]]:
    """Pair student decoder layers with teacher decoder layers.

    * Equal depths (with a named mapping): ``(i, i)`` for every layer.
    * ``"last_aligned"``: student layer ``i`` learns from teacher layer
      ``round((i + 1) * Lt / Ls) - 1`` (halves rounded up, clamped at 0), so the last layers
      always pair up; e.g. Ls=3, Lt=6 gives (0, 1), (1, 3), (2, 5).
    * ``"uniform"``: student layer ``i`` learns from teacher layer ``round(i * (Lt-1) / (Ls-1))``
      (first with first, last with last, evenly spread in between; a 1-layer student takes the
      last teacher layer); e.g. Ls=3, Lt=6 gives (0, 0), (1, 3), (2, 5).
    * An explicit sequence of ``(student, teacher)`` pairs is validated and returned as a list of
      tuples; student layers may be left out or repeated.

    Args:
        num_student: Number of student decoder layers Ls (>= 1).
        num_teacher: Number of teacher decoder layers Lt (>= 1).
        mapping: "last_aligned", "uniform" or a sequence of ``(student, teacher)`` int pairs
            (config key ``model.layer_mapping``).

    Returns:
        list of ``(student_layer, teacher_layer)`` tuples.

    Raises:
        ValueError: on non-positive depths, an unknown mapping name, or a malformed or
            out-of-range explicit pair.
    """
    for name, value in (("num_student", num_student), ("num_teacher", num_teacher)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(mapping, str):
        if mapping not in LAYER_MAPPINGS:
            raise ValueError(
                f"model.layer_mapping must be one of {LAYER_MAPPINGS} or a list of "
                f"(student, teacher) layer pairs, got {mapping!r}"
            )
        if num_student == num_teacher:
            return [(i, i) for i in range(num_student)]
        if mapping == "last_aligned":
            return [
                (i, max(0, _round_half_up((i + 1) * num_teacher, num_student) - 1))
                for i in range(num_student)
            ]
        if num_student == 1:
            return [(0, num_teacher - 1)]
        return [
            (i, _round_half_up(i * (num_teacher - 1), num_student - 1)) for i in range(num_student)
        ]
    return _validate_pairs(mapping, num_student, num_teacher)


def _validate_pairs(mapping, num_student: int, num_teacher: int) -> list[tuple[int, int]]:
    try:
        pairs = [tuple(p) for p in mapping]
    except TypeError as err:
        raise ValueError(
            f"model.layer_mapping must be a name or a list of (student, teacher) pairs, "
            f"got {mapping!r}"
        ) from err
    if not pairs:
        raise ValueError("model.layer_mapping is an empty list; give at least one layer pair")
    result = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise ValueError(
                f"model.layer_mapping entry {pair!r} is not a (student, teacher) pair of ints"
            )
        s, t = pair
        if not 0 <= s < num_student:
            raise ValueError(
                f"model.layer_mapping pair {pair}: student layer {s} is out of range "
                f"[0, {num_student - 1}] (the student decoder has {num_student} layers)"
            )
        if not 0 <= t < num_teacher:
            raise ValueError(
                f"model.layer_mapping pair {pair}: teacher layer {t} is out of range "
                f"[0, {num_teacher - 1}] (the teacher decoder has {num_teacher} layers)"
            )
        result.append((s, t))
    return result
