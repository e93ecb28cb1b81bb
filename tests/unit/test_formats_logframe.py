"""Which call a hot container's output lines belong to."""

from executor.formats.logframe import MAX_LINE, LogFrames

STDOUT, STDERR = 1, 2


def test_an_fdk_frame_gives_the_lines_after_it_to_that_call():
    frames = LogFrames("FN_CALL_ID")
    # What the Python FDK prints: "\nFN_CALL_ID=<id>\n" with print's own newline.
    assert frames.feed(STDERR, b"\nFN_CALL_ID=A\n\nworking on A\n", current="A") == [
        ("A", b"working on A\n")
    ]
    assert frames.feed(STDERR, b"more A\n\nFN_CALL_ID=B\n\nB1\nB2\n", current="B") == [
        ("A", b"more A\n"),
        ("B", b"B1\nB2\n"),
    ]


def test_frames_win_over_the_call_the_container_serves():
    frames = LogFrames("FN_CALL_ID")
    frames.feed(STDOUT, b"FN_CALL_ID=A\n", current="A")
    # Output of call A that trails its answer, while the executor already sent call B.
    assert frames.feed(STDOUT, b"late A\n", current="B") == [("A", b"late A\n")]


def test_each_stream_has_its_own_frame():
    frames = LogFrames("FN_CALL_ID")
    frames.feed(STDOUT, b"FN_CALL_ID=A\n", current="A")
    frames.feed(STDERR, b"FN_CALL_ID=B\n", current="B")
    assert frames.feed(STDOUT, b"out\n", current=None) == [("A", b"out\n")]
    assert frames.feed(STDERR, b"err\n", current=None) == [("B", b"err\n")]


def test_without_frames_lines_go_to_the_call_being_served():
    frames = LogFrames("FN_CALL_ID")
    assert frames.feed(STDERR, b"starting up\n", current=None) == []  # before any call
    assert frames.feed(STDERR, b"one\n", current="A") == [("A", b"one\n")]
    assert frames.feed(STDOUT, b"two\n", current="B") == [("B", b"two\n")]


def test_partial_lines_wait_for_their_end_and_long_ones_are_cut():
    frames = LogFrames("FN_CALL_ID")
    assert frames.feed(STDERR, b"hal", current="A") == []
    assert frames.feed(STDERR, b"f\n", current="A") == [("A", b"half\n")]
    long = b"x" * (MAX_LINE + 1)
    assert frames.feed(STDERR, long, current="A") == [("A", long + b"\n")]


def test_a_bare_frame_name_is_an_ordinary_line():
    frames = LogFrames("FN_CALL_ID")
    assert frames.feed(STDOUT, b"FN_CALL_ID=\n", current="A") == [("A", b"FN_CALL_ID=\n")]


def test_the_blank_lines_around_a_frame_are_dropped_across_chunks():
    frames = LogFrames("FN_CALL_ID")
    frames.feed(STDOUT, b"FN_CALL_ID=A\n\nA1\n", current="A")
    assert frames.feed(STDOUT, b"\n", current="A") == []  # held: a frame may follow
    assert frames.feed(STDOUT, b"FN_CALL_ID=B\n", current="B") == []
    assert frames.feed(STDOUT, b"\nB1\n\n\nB2\n", current="B") == [("B", b"B1\n\n\nB2\n")]


def test_a_flood_of_lines_comes_out_as_one_run_per_call():
    frames = LogFrames("FN_CALL_ID")
    flood = b"y\n" * 100_000
    out = frames.feed(STDOUT, flood + b"\nFN_CALL_ID=B\n\n" + flood, current="A")
    assert out == [("A", flood), ("B", flood)]


def test_a_line_without_its_end_is_held_across_many_small_chunks():
    frames = LogFrames("FN_CALL_ID")
    for _ in range(1000):
        assert frames.feed(STDERR, b"x", current="A") == []
    assert frames.feed(STDERR, b"\n", current="A") == [("A", b"x" * 1000 + b"\n")]
