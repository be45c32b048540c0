"""The .rnz container: its layout, and every way a damaged archive must fail."""

import hashlib
import io
import os
import struct
import zlib

import numpy as np
import pytest

import rnnzip
from rnnzip import container, engines
from rnnzip.errors import RnnzipError

DATA = "Hello, rnnzip! ça va? ✓ 中文\r\n".encode()  # 35 bytes
FRAME_SIZE = 16
TRAILER_SIZE = 1 + 4 + 8 + 4 + 4


@pytest.fixture(scope="module")
def archive(tiny_gru):
    """An archive of DATA in three frames (16, 16, 3 bytes) of two segments."""
    engine, name = engines.load_engine(tiny_gru)
    out = io.BytesIO()
    # a tiny random model expands text: keep its frames coded, not stored
    container.write_archive(engine, name, io.BytesIO(DATA), out,
                            frame_size=FRAME_SIZE, num_segments=2,
                            store_incompressible=False)
    return out.getvalue()


def _fields(packed):
    """Parse an archive independently of the package: name -> (offset, size).

    Frame fields are named ``f{index}_{field}`` with frames counted from 1.
    """
    f = {"magic": (0, 8), "version": (8, 1), "flags": (9, 1), "identity": (10, 32),
         "name_len": (42, 1)}
    name_len = packed[42]
    f["name"] = (43, name_len)
    pos = 43 + name_len
    f["frame_size"] = (pos, 4)
    pos += 4
    if packed[9] & 0x02:  # context-mixed: the mixer profile's byte
        f["mixer"] = (pos, 1)
        pos += 1
    f["header_crc"] = (pos, 4)
    pos += 4
    index = 0
    while packed[pos:pos + 1] == b"F":
        index += 1
        p = f"f{index}_"
        for key, size in (("tag", 1), ("length", 4), ("seg_len", 4),
                          ("segments", 4), ("words", 4), ("data_crc", 4),
                          ("crc", 4)):
            f[p + key] = (pos, size)
            pos += size
        words = _u(packed, f[p + "words"])
        f[p + "payload"] = (pos, 4 * words)
        pos += 4 * words
    for key, size in (("end_tag", 1), ("end_frames", 4), ("end_total", 8),
                      ("end_crc", 4), ("end_check", 4)):
        f[key] = (pos, size)
        pos += size
    assert pos == len(packed)
    return f


def _u(packed, field):
    offset, size = field
    return int.from_bytes(packed[offset:offset + size], "little")


def _put(packed, field, value):
    offset, size = field
    raw = value.to_bytes(size, "little") if isinstance(value, int) else value
    assert len(raw) == size
    return packed[:offset] + raw + packed[offset + size:]


def _flip(packed, offset, bit=0):
    return packed[:offset] + bytes([packed[offset] ^ (1 << bit)]) + packed[offset + 1:]


def _reseal(packed):
    """Recompute the header, frame and trailer crcs after an edit."""
    f = _fields(packed)
    packed = _put(packed, f["header_crc"], zlib.crc32(packed[:f["header_crc"][0]]))
    index = 1
    while f"f{index}_tag" in f:
        start, end = f[f"f{index}_tag"][0], f[f"f{index}_crc"][0]
        packed = _put(packed, f[f"f{index}_crc"], zlib.crc32(packed[start:end]))
        index += 1
    start, end = f["end_tag"][0], f["end_check"][0]
    return _put(packed, f["end_check"], zlib.crc32(packed[start:end]))


def _fails(packed, match):
    with pytest.raises(RnnzipError, match=match):
        rnnzip.decompress(packed)


def test_layout_matches_the_documented_format(archive, tiny_gru):
    engine, _ = engines.load_engine(tiny_gru)
    f = _fields(archive)
    assert archive[:8] == b"\x89RNZ\r\n\x1a\n" == container.MAGIC
    assert _u(archive, f["version"]) == container.FORMAT_VERSION == 1
    assert _u(archive, f["flags"]) == 0
    assert archive[10:42] == bytes.fromhex(engine.identity)
    assert archive[43:43 + archive[42]] == b"tiny-gru"
    assert _u(archive, f["frame_size"]) == FRAME_SIZE
    offset, _ = f["header_crc"]
    assert _u(archive, f["header_crc"]) == zlib.crc32(archive[:offset])

    # three frames: 16 + 16 + 3 bytes, each in two segments, the last 2 + 1
    layout = [(_u(archive, f[f"f{i}_length"]), _u(archive, f[f"f{i}_seg_len"]),
               _u(archive, f[f"f{i}_segments"])) for i in (1, 2, 3)]
    assert layout == [(16, 8, 2), (16, 8, 2), (3, 2, 2)]
    for i, chunk in enumerate((DATA[:16], DATA[16:32], DATA[32:]), 1):
        assert _u(archive, f[f"f{i}_data_crc"]) == zlib.crc32(chunk)
        tag, crc = f[f"f{i}_tag"][0], f[f"f{i}_crc"][0]
        assert _u(archive, f[f"f{i}_crc"]) == zlib.crc32(archive[tag:crc])

    # the trailer
    assert archive[f["end_tag"][0]] == ord("E")
    assert _u(archive, f["end_frames"]) == 3
    assert _u(archive, f["end_total"]) == len(DATA)
    assert _u(archive, f["end_crc"]) == zlib.crc32(DATA)
    assert _u(archive, f["end_check"]) == zlib.crc32(archive[-TRAILER_SIZE:-4])
    assert _reseal(archive) == archive
    assert rnnzip.decompress(archive) == DATA


def test_read_header_and_info_only(archive):
    info, _ = container.read_header(io.BytesIO(archive))
    assert info.model_name == "tiny-gru"
    assert info.frame_size == FRAME_SIZE
    info = container.read_archive(io.BytesIO(archive), io.BytesIO(), None,
                                  info_only=True)
    assert info.original_size == len(DATA)
    assert info.archive_size == len(archive)
    assert info.crc == zlib.crc32(DATA)
    assert [fr.length for fr in info.frames] == [16, 16, 3]


# -- the header ---------------------------------------------------------------

@pytest.mark.parametrize("offset", range(8))
def test_bad_magic(archive, offset):
    _fails(_flip(archive, offset, 3), "^not an rnnzip archive")


def test_not_an_archive_at_all():
    _fails(b"", "^not an rnnzip archive")
    _fails(b"hello world, this is plain text\n", "^not an rnnzip archive")
    _fails(b"\x1f\x8b\x08\x00" + bytes(40), "^not an rnnzip archive")


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unsupported_version(archive, version):
    f = _fields(archive)
    for packed in (_put(archive, f["version"], version),
                   _reseal(_put(archive, f["version"], version))):
        _fails(packed, f"^unsupported archive format version {version}; "
                       f"this rnnzip reads version 1")


@pytest.mark.parametrize("key", ["flags", "identity", "name", "frame_size",
                                 "header_crc"])
def test_altered_header_field(archive, key):
    offset, size = _fields(archive)[key]
    for at in sorted({offset, offset + size - 1}):
        _fails(_flip(archive, at, 5), r"^corrupt archive header \(its checksum")


@pytest.mark.parametrize("delta", [-1, 1, 2])
def test_altered_name_length(archive, delta):
    f = _fields(archive)
    packed = _put(archive, f["name_len"], archive[42] + delta)
    _fails(packed, r"^corrupt archive header \(its checksum")


def test_name_length_past_the_end(archive):
    # a short archive whose name length points past its end
    f = _fields(archive)
    packed = _put(archive, f["name_len"], 255)[:200]
    _fails(packed, "^truncated archive: it ends inside the header")


def test_unknown_flags_behind_a_good_checksum(archive):
    packed = _reseal(_put(archive, _fields(archive)["flags"], 4))
    _fails(packed, "^archive header has unknown flags 0x04")


def test_the_first_mixers_flag_is_refused_by_name(archive):
    packed = _reseal(_put(archive, _fields(archive)["flags"], 1))
    _fails(packed, "^the archive was context-mixed by the first mixer")


@pytest.fixture(scope="module")
def mixed_archive(tiny_gru):
    """DATA repeated, context-mixed: the mixer has seen contexts and matters."""
    engine, name = engines.load_engine(tiny_gru)
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(DATA * 20), out, mix=True,
                            store_incompressible=False)
    return out.getvalue()


def test_mixing_flag_cleared_behind_a_good_checksum(mixed_archive):
    # decoding without the mixer meets the mixer's code stream: its checksum fails
    f = _fields(mixed_archive)
    offset, _ = f["mixer"]
    packed = _put(mixed_archive, f["flags"], 0)
    packed = _reseal(packed[:offset] + packed[offset + 1:])
    _fails(packed, "^checksum mismatch in frame 1")


def test_other_mixer_profile_behind_a_good_checksum(mixed_archive):
    f = _fields(mixed_archive)
    assert _u(mixed_archive, f["mixer"]) == 3  # the full profile, the default
    _fails(_reseal(_put(mixed_archive, f["mixer"], 4)), "^checksum mismatch in frame 1")
    for retired in (1, 2):
        _fails(_reseal(_put(mixed_archive, f["mixer"], retired)),
               f"^the archive was context-mixed with profile {retired} of an "
               f"earlier mixer")
    _fails(_reseal(_put(mixed_archive, f["mixer"], 99)),
           "^archive header names context mixing profile 99, unknown")


def test_other_identity_behind_a_good_checksum(archive, model_root):
    f = _fields(archive)
    identity = bytes(32 - 4) + b"\xde\xad\xbe\xef"
    packed = _reseal(_put(archive, f["identity"], identity))
    with pytest.raises(RnnzipError) as excinfo:
        rnnzip.decompress(packed)
    message = str(excinfo.value)
    assert "the archive was made with model 'tiny-gru'" in message
    assert f"(identity {identity.hex()[:16]}...)" in message
    assert "which is not installed" in message
    assert str(model_root) in message


def test_other_name_same_identity_still_decodes(archive):
    # the identity decides; the name only helps to find the model quickly
    f = _fields(archive)
    packed = _reseal(_put(archive, f["name"], b"tiny-XYZ"))
    assert rnnzip.decompress(packed) == DATA


def test_smaller_frame_size_behind_a_good_checksum(archive):
    packed = _reseal(_put(archive, _fields(archive)["frame_size"], 8))
    _fails(packed, r"^corrupt header of frame 1: inconsistent layout \(16 bytes")


# -- frames -------------------------------------------------------------------

FRAME_KEYS = ["length", "seg_len", "segments", "words", "data_crc", "crc"]


@pytest.mark.parametrize("index", [1, 2, 3])
@pytest.mark.parametrize("key", FRAME_KEYS)
def test_altered_frame_header_field(archive, index, key):
    offset, size = _fields(archive)[f"f{index}_{key}"]
    for at in sorted({offset, offset + size - 1}):
        _fails(_flip(archive, at, 0),
               rf"^corrupt header of frame {index} \(its checksum does not match\)")


@pytest.mark.parametrize("tag, match", [
    (b"X", r"^corrupt archive: unknown tag b'X' at byte \d+"),
    (b"\x00", r"^corrupt archive: unknown tag b'\\x00' at byte \d+"),
    (b"E", r"^corrupt archive trailer \(its checksum does not match\)"),
])
def test_altered_frame_tag(archive, tag, match):
    packed = _put(archive, _fields(archive)["f2_tag"], tag)
    _fails(packed, match)


@pytest.mark.parametrize("key, value, match", [
    ("length", 15, r"^checksum mismatch in frame 1"),
    ("length", 17, r"^corrupt header of frame 1: inconsistent layout"),
    ("length", 8, r"^corrupt header of frame 1: inconsistent layout"),
    ("seg_len", 9, r"^checksum mismatch in frame 1"),
    ("seg_len", 16, r"^corrupt header of frame 1: inconsistent layout"),
    ("seg_len", 7, r"^corrupt header of frame 1: inconsistent layout"),
    ("segments", 0, r"^corrupt header of frame 1: inconsistent layout"),
    ("segments", 3, r"^corrupt header of frame 1: inconsistent layout"),
    ("data_crc", 12345, r"^checksum mismatch in frame 1: the data is corrupt"),
])
def test_frame_header_lies_behind_a_good_checksum(archive, key, value, match):
    packed = _reseal(_put(archive, _fields(archive)[f"f1_{key}"], value))
    _fails(packed, match)


def test_huge_segment_length_behind_a_good_checksum(archive):
    # one segment longer than its frame would make the decoder allocate for it
    f = _fields(archive)
    packed = _put(_put(archive, f["f1_segments"], 1), f["f1_seg_len"], 2**31)
    _fails(_reseal(packed), r"^corrupt header of frame 1: inconsistent layout")


@pytest.mark.parametrize("delta", [-1, 1])
def test_frame_word_count_lies_behind_a_good_checksum(archive, delta):
    f = _fields(archive)
    key = "f1_words"
    edited = _put(archive, f[key], _u(archive, f[key]) + delta)
    start, end = f["f1_tag"][0], f["f1_crc"][0]
    packed = _put(edited, f["f1_crc"], zlib.crc32(edited[start:end]))
    _fails(packed, "^(checksum mismatch in frame 1|corrupt archive: unknown tag)")


# -- the trailer --------------------------------------------------------------

@pytest.mark.parametrize("key", ["end_frames", "end_total", "end_crc", "end_check"])
def test_altered_trailer_field(archive, key):
    offset, size = _fields(archive)[key]
    for at in sorted({offset, offset + size - 1}):
        _fails(_flip(archive, at, 7),
               r"^corrupt archive trailer \(its checksum does not match\)")


def test_altered_trailer_tag(archive):
    packed = _put(archive, _fields(archive)["end_tag"], b"e")
    _fails(packed, r"^corrupt archive: unknown tag b'e'")


@pytest.mark.parametrize("key, value, match", [
    ("end_frames", 2, "^corrupt archive: the trailer counts 2 frames, the archive "
                      "holds 3"),
    ("end_frames", 4, "^corrupt archive: the trailer counts 4 frames"),
    ("end_total", len(DATA) + 1, "^checksum mismatch of the whole archive"),
    ("end_crc", 0, "^checksum mismatch of the whole archive"),
])
def test_trailer_lies_behind_a_good_checksum(archive, key, value, match):
    packed = _reseal(_put(archive, _fields(archive)[key], value))
    _fails(packed, match)


def test_missing_frame_behind_good_checksums(archive):
    # drop frame 2 whole: every remaining crc is intact, the trailer is not fooled
    f = _fields(archive)
    start, end = f["f2_tag"][0], f["f3_tag"][0]
    _fails(archive[:start] + archive[end:], "^corrupt archive: the trailer counts 3")


def test_swapped_frames_are_caught(archive):
    f = _fields(archive)
    a, b, c = f["f1_tag"][0], f["f2_tag"][0], f["f3_tag"][0]
    swapped = archive[:a] + archive[b:c] + archive[a:b] + archive[c:]
    assert swapped != archive
    _fails(swapped, "^checksum mismatch of the whole archive")


# -- truncation, bit flips, trailing data --------------------------------------

def test_truncated_at_every_offset(archive):
    _fails(archive[:0], "^not an rnnzip archive")
    for n in range(1, len(archive)):
        with pytest.raises(RnnzipError, match="^truncated archive: it ends inside"):
            rnnzip.decompress(archive[:n])


def test_truncation_names_the_part(archive):
    f = _fields(archive)
    _fails(archive[:5], "ends inside the header")
    _fails(archive[:f["f1_seg_len"][0]], "ends inside the header of frame 1")
    payload = f["f2_payload"][0]
    _fails(archive[:payload + 2], "ends inside the data of frame 2")
    _fails(archive[:f["end_tag"][0]], "ends inside the tag after frame 3")
    _fails(archive[:-1], "ends inside the trailer")


def test_every_single_bit_flip_is_caught(archive):
    raised = 0
    for offset in range(len(archive)):
        for bit in range(8):
            try:
                out = rnnzip.decompress(_flip(archive, offset, bit))
            except RnnzipError:
                raised += 1
                continue
            # a flip the coder never reads may go unnoticed, but never wrong bytes
            assert out == DATA, (offset, bit)
    assert raised >= 8 * len(archive) - 64


def test_payload_bit_flips_never_give_wrong_bytes(tiny_models):
    # a longer single frame, flips spread over its whole coder stream
    engine, name = engines.load_engine(tiny_models["lstm"])
    data = ("Ελληνικά, русский, English; " * 12).encode()
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(data), out, num_segments=3,
                            store_incompressible=False)
    packed = out.getvalue()
    start, size = _fields(packed)["f1_payload"]
    rng = np.random.default_rng(0)
    raised = 0
    for at in rng.choice(np.arange(start, start + size), 60, replace=False):
        try:
            got = rnnzip.decompress(_flip(packed, int(at), int(rng.integers(8))))
        except RnnzipError as exc:
            assert "checksum mismatch in frame 1" in str(exc)
            raised += 1
            continue
        assert got == data
    assert raised >= 50


@pytest.mark.parametrize("extra", [b"\x00", b"garbage", b"\x89RNY"])
def test_trailing_data(archive, extra):
    _fails(archive + extra, "^trailing data after the end of the archive")


def test_concatenated_archives_decode_to_the_concatenation(archive):
    # like gzip: `compress -c a b > ab.rnz` decodes to a + b
    first = rnnzip.decompress(archive)
    second = rnnzip.compress(b"and a second member", model="tiny-gru")
    assert rnnzip.decompress(archive + second) == first + b"and a second member"
    assert rnnzip.decompress(archive + archive) == first + first
    _fails(archive + second[:-1], "^truncated archive")


# -- models -------------------------------------------------------------------

def test_unknown_model_names_model_identity_and_directories(tmp_path, model_root,
                                                           write_model_dir):
    model_dir = tmp_path / "absent-model"
    identity = write_model_dir(str(model_dir), "gru", 1, 16, 99, "absent-model")
    packed = rnnzip.compress(b"made with a model nobody has", model=str(model_dir))
    with pytest.raises(RnnzipError) as excinfo:
        rnnzip.decompress(packed)
    message = str(excinfo.value)
    assert message.startswith("the archive was made with model 'absent-model' "
                              f"(identity {identity[:16]}...), which is not "
                              "installed; looked in ")
    assert str(model_root) in message
    assert "RNNZIP_MODEL_PATH" in message


def test_tampered_model_weights_are_refused(tmp_path, model_root, monkeypatch,
                                           write_model_dir):
    # two copies of one model: one makes the archive, the other is installed
    # (loaded models are cached per directory, so the installed one is fresh)
    for where in ("made", "installed"):
        write_model_dir(str(tmp_path / where / "tampered"), "gru", 1, 16, 98,
                        "tampered")
    installed = tmp_path / "installed"
    monkeypatch.setenv("RNNZIP_MODEL_PATH", f"{installed}{os.pathsep}{model_root}")
    packed = rnnzip.compress(b"some bytes", model=str(tmp_path / "made" / "tampered"))

    # the card's sha256 no longer matches exact.npz
    path = installed / "tampered" / "exact.npz"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(RnnzipError, match="do not match the model card"):
        rnnzip.decompress(packed)


def test_struct_sizes_match_the_docstring():
    assert struct.calcsize("<BB32s") == 34
    assert 1 + container._FRAME.size + 4 == 25
    assert 1 + container._TRAILER.size + 4 == TRAILER_SIZE


# -- the pinned archive --------------------------------------------------------

PINNED_TEXT = ("The Time Traveller (for so it will be convenient to speak of him)\n"
               "ça, Ελληνικά, 中文 😀\r\n").encode()
PINNED_IDENTITY = "88233003ee89aa5006e047bdb9423d23c44a05e156f85ffdc85bfe21e816d111"
PINNED_LENGTH = 225
PINNED_SHA256 = "96796b6ea0473d52156e7422f1c485c24084a73f571507a0f56bc1e53a76a1c3"
PINNED_FRAMES_LENGTH = 275
PINNED_FRAMES_SHA256 = (
    "b43068569b423f38960a72b3f3e41c3bfc19cd4f8dbbf0971e83c2c83bd7bb08")


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_pinned_archive(tiny_gru):
    # any change to the model rules, the coder or the format shows up here;
    # such a change needs a new FORMAT_VERSION or ENGINE_VERSION, then new pins
    engine, name = engines.load_engine(tiny_gru)
    assert engine.identity == PINNED_IDENTITY
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(PINNED_TEXT), out,
                            store_incompressible=False)
    packed = out.getvalue()
    assert len(packed) == PINNED_LENGTH
    assert _sha256(packed) == PINNED_SHA256
    assert rnnzip.decompress(packed) == PINNED_TEXT

    # several frames and segments
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(PINNED_TEXT), out,
                            frame_size=40, num_segments=3, store_incompressible=False)
    assert len(out.getvalue()) == PINNED_FRAMES_LENGTH
    assert _sha256(out.getvalue()) == PINNED_FRAMES_SHA256


def test_pin_would_catch_a_change(tiny_gru, tmp_path, write_model_dir):
    # the same name, another seed: another identity and other bytes
    model_dir = tmp_path / "tiny-gru"
    identity = write_model_dir(str(model_dir), "gru", 1, 16, 1, "tiny-gru")
    assert identity != PINNED_IDENTITY
    other = rnnzip.compress(PINNED_TEXT, model=str(model_dir))
    assert other[43:51] == b"tiny-gru"
    assert _sha256(other) != PINNED_SHA256

    # one changed byte of input
    changed = rnnzip.compress(PINNED_TEXT[:-1] + b"?", model=tiny_gru)
    assert _sha256(changed) != PINNED_SHA256


# -- stored frames --------------------------------------------------------------

def test_incompressible_frames_are_stored_not_expanded(tiny_gru):
    # random bytes under a model that cannot predict them: stored, 8 bpc plus
    # the headers, where coding would have cost far more
    engine, name = engines.load_engine(tiny_gru)
    data = np.random.default_rng(3).integers(0, 256, 3000, np.uint8).tobytes()
    out = io.BytesIO()
    info = container.write_archive(engine, name, io.BytesIO(data), out,
                                   frame_size=1024)
    packed = out.getvalue()
    assert [f.stored for f in info.frames] == [True, True, True]
    assert len(packed) <= len(data) + 120
    assert info.coder_bytes == len(data)
    assert rnnzip.decompress(packed) == data

    coded = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(data), coded, frame_size=1024,
                            store_incompressible=False)
    assert len(coded.getvalue()) > len(packed)


def test_damaged_stored_frame(tiny_gru):
    engine, name = engines.load_engine(tiny_gru)
    data = bytes(range(256)) * 4
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(data), out)
    packed = out.getvalue()
    start = packed.index(b"S", len(container.MAGIC) + 35 + len(name) + 8)
    assert packed[start + 13:start + 13 + len(data)] == data
    _fails(_flip(packed, start + 13 + 100, 3),
           r"^checksum mismatch in frame 1: the stored data is corrupt")
    _fails(_flip(packed, start + 2, 0),
           r"^corrupt header of frame 1 \(its checksum does not match\)")
    _fails(packed[:start + 13 + 10], r"^truncated archive")
