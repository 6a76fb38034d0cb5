"""Preview sizes, parameters and formats as oCIS decides them."""

from __future__ import annotations

import pytest

from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.thumbnails import DEFAULT_RESOLUTIONS, PreviewRequest, output_format, parse_request, snap


def test_parameters_default_and_validate():
    assert parse_request({}) == PreviewRequest(32, 32, "")
    assert parse_request({"x": "100", "y": "50", "processor": "FIT", "a": "1", "c": "x"}) == PreviewRequest(100, 50,
                                                                                                           "fit")
    assert parse_request({"processor": "sharpen"}).processor == ""  # unknown: the default for the type
    for query, message in (({"x": "0"}, "width"), ({"y": "-3"}, "height"), ({"x": "big"}, "width")):
        with pytest.raises(InvalidArgument, match=f"Cannot set {message} of 0 or smaller!"):
            parse_request(query)


@pytest.mark.parametrize("want, source, expected", [
    ((36, 36), (600, 400), (64, 64)),  # landscape: widths compared, the next resolution up
    ((32, 32), (600, 400), (32, 32)),
    ((200, 200), (600, 400), (1080, 1920)),  # the smallest width >= 200 (oCIS compares one side)
    ((200, 200), (400, 600), (1920, 1080)),  # portrait: heights compared
    ((2000, 2000), (600, 400), (600, 400)),  # a smaller source keeps its size
    ((9000, 9000), (10000, 9500), (7680, 4320)),  # nothing large enough: the last resolution
])
def test_sizes_snap_to_the_configured_resolutions(want, source, expected):
    assert snap(DEFAULT_RESOLUTIONS, *want, *source) == expected


def test_output_formats_follow_the_source():
    assert output_format("image/png", "a.png") == "png"
    assert output_format("image/gif", "a.gif") == "gif"
    assert output_format("image/jpeg", "a.jpg") == "jpeg"
    assert output_format("image/tiff", "a.tiff") == "jpeg"
    assert output_format("text/plain", "a.txt") == "jpeg"
