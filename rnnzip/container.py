"""The ``.rnz`` archive format.

All integers are little-endian. An archive is a header, any number of frames
and a trailer::

    header   magic  8 bytes  b"\\x89RNZ\\r\\n\\x1a\\n"
             version u8, flags u8 (bit 1: frames are context-mixed, see
             rnnzip.mixer; bit 0 marked the first mixer, which is gone;
             the other bits are 0)
             model identity, 32 bytes (sha256, see exact.model_identity)
             model name: length u8, UTF-8 bytes
             frame size u32 (the largest frame the encoder makes)
             mixer profile u8, only with flag bit 1 (mixer.PROFILES; the
             numbers in mixer.RETIRED_PROFILES are refused)
             crc32 of the header so far, u32
    frame    tag b"F", original length u32, segment length u32,
             segments u32, coder words u32, crc32 of the original bytes u32,
             crc32 of the frame header so far u32,
             then the range coder's 32-bit words
    stored   tag b"S", original length u32, crc32 of the original bytes u32,
             crc32 of the frame header so far u32, then the bytes as they are:
             written instead of a coded frame that would not be smaller
    trailer  tag b"E", frames u32, total length u64, crc32 of all the
             original bytes u32, crc32 of the trailer so far u32

Frames are independent: each starts its segments cold and has its own coder
stream, so a large input streams through in bounded memory. Every field is
checked on reading; a problem raises :class:`RnnzipError` with a message that
names it, and no frame's bytes are handed on before its checksum matched.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .codec import MAX_SEGMENTS, decode_frame, encode_frame, model_segments
from .errors import RnnzipError
from .exact import ExactModel
from .mixer import FULL, PROFILES, RETIRED_PROFILES, Profile
from .pipeline import NetworkWorker, can_fork, usable_cpus

__all__ = ["MAGIC", "FORMAT_VERSION", "FRAME_SIZE", "RnnzipError", "ArchiveInfo",
           "write_archive", "read_archive", "read_header"]

MAGIC = b"\x89RNZ\r\n\x1a\n"
FORMAT_VERSION = 1
FRAME_SIZE = 1 << 20
FLAG_MIX_V1 = 0x01  # the first mixer's archives (development builds only)
FLAG_MIX = 0x02  # the network's frequencies go through rnnzip.mixer
_KNOWN_FLAGS = FLAG_MIX

_HEADER = struct.Struct("<BB32s")
_FRAME = struct.Struct("<IIIII")  # length, seg_len, segments, words, crc
_STORED = struct.Struct("<II")  # length, crc
_TRAILER = struct.Struct("<IQI")  # frames, total length, crc
_U32 = struct.Struct("<I")


@dataclass
class FrameInfo:
    length: int
    seg_len: int
    segments: int
    words: int
    ideal_bits: float | None = None
    stored: bool = False

    @property
    def payload_bytes(self) -> int:
        return self.length if self.stored else 4 * self.words


@dataclass
class ArchiveInfo:
    """What reading or writing an archive found out."""

    version: int = FORMAT_VERSION
    identity: bytes = b""
    model_name: str = ""
    frame_size: int = FRAME_SIZE
    frames: list = field(default_factory=list)
    original_size: int = 0
    archive_size: int = 0
    crc: int = 0
    header_bytes: int = 0
    members: int = 1
    mixer: Profile | None = None  # the context mixing profile, None: no mixing

    @property
    def mix(self) -> bool:
        return self.mixer is not None

    @property
    def coder_bytes(self) -> int:
        """Bytes of frame payloads: coder words, or the bytes of stored frames."""
        return sum(f.payload_bytes for f in self.frames)

    @property
    def ideal_bits(self) -> float | None:
        bits = [f.ideal_bits for f in self.frames]
        return None if any(b is None for b in bits) else float(sum(bits))


class _Reader:
    """Exact reads that turn a short read into a 'truncated' error."""

    def __init__(self, stream):
        self.stream = stream
        self.offset = 0
        self.pending = b""

    def read_upto(self, n: int) -> bytes:
        data, self.pending = self.pending[:n], self.pending[n:]
        if len(data) < n:
            data += self.stream.read(n - len(data))
        self.offset += len(data)
        return data

    def at_end(self) -> bool:
        """Whether the stream is exhausted (reads one byte ahead)."""
        if not self.pending:
            self.pending = self.stream.read(1)
        return not self.pending

    def read(self, n: int, what: str) -> bytes:
        data = self.read_upto(n)
        if len(data) != n:
            raise RnnzipError(f"truncated archive: it ends inside {what} "
                              f"(at byte {self.offset})")
        return data


def _header_bytes(identity: bytes, name: str, frame_size: int, mixer) -> bytes:
    raw_name = name.encode("utf-8")[:255]
    flags = FLAG_MIX if mixer else 0
    head = (MAGIC + _HEADER.pack(FORMAT_VERSION, flags, identity)
            + bytes([len(raw_name)]) + raw_name + _U32.pack(frame_size)
            + (bytes([mixer.number]) if mixer else b""))
    return head + _U32.pack(zlib.crc32(head))


def write_archive(engine, name: str, source, sink, frame_size: int = FRAME_SIZE,
                  num_segments: int | None = None, progress=None,
                  store_incompressible: bool = True,
                  mix: bool | None = None) -> ArchiveInfo:
    """Compress everything ``source.read`` gives into ``sink.write``.

    ``engine`` is an exact model (numpy or MXNet back-end); ``name`` is the
    model's name, recorded for the error message of a decoder that lacks it.
    ``num_segments`` overrides the segments chosen from each frame's size.
    ``progress(n)`` is called with the bytes of each frame done. A frame whose
    coded form would not be smaller than its bytes is stored as it is, unless
    ``store_incompressible`` is false (tests use that to pin the coder).
    ``mix`` turns context mixing on or off; ``None`` takes the model's choice
    (``engine.mix``, from its card). The profile is the model's
    (``engine.mix_profile``, the full one if its card names none); the header
    records it.
    """
    if mix is None:
        mix = getattr(engine, "mix", False)
    mixer = (getattr(engine, "mix_profile", None) or FULL) if mix else None
    identity = bytes.fromhex(engine.identity)
    head = _header_bytes(identity, name, frame_size, mixer)
    sink.write(head)
    info = ArchiveInfo(identity=identity, model_name=name, frame_size=frame_size,
                       header_bytes=len(head), mixer=mixer)
    crc, total = 0, len(head)
    while True:
        data = source.read(frame_size)
        if not data:
            break
        segments = num_segments or model_segments(engine, len(data))
        seg_len, lengths, words, bits = encode_frame(engine, data, segments, mixer)
        frame = FrameInfo(len(data), seg_len, len(lengths), len(words), bits)
        if store_incompressible and 4 * len(words) >= len(data):
            # the model does not fit these bytes: store them rather than expand
            frame.stored, frame.words = True, 0
            fields = b"S" + _STORED.pack(len(data), zlib.crc32(data))
            payload = data
        else:
            fields = b"F" + _FRAME.pack(len(data), seg_len, len(lengths), len(words),
                                        zlib.crc32(data))
            payload = np.asarray(words, dtype="<u4").tobytes()
        frame_head = fields + _U32.pack(zlib.crc32(fields))
        sink.write(frame_head)
        sink.write(payload)
        info.frames.append(frame)
        info.header_bytes += len(frame_head)
        total += len(frame_head) + len(payload)
        crc = zlib.crc32(data, crc)
        info.original_size += len(data)
        if progress:
            progress(len(data))
    fields = b"E" + _TRAILER.pack(len(info.frames), info.original_size, crc)
    tail = fields + _U32.pack(zlib.crc32(fields))
    sink.write(tail)
    info.header_bytes += len(tail)
    info.archive_size = total + len(tail)
    info.crc = crc
    return info


def read_header(stream) -> tuple[ArchiveInfo, _Reader]:
    """Read and check an archive's header; return it and the positioned reader."""
    r = stream if isinstance(stream, _Reader) else _Reader(stream)
    start = r.offset
    magic = r.read_upto(len(MAGIC))
    if magic != MAGIC[:len(magic)] or not magic:
        if start:
            raise RnnzipError("trailing data after the end of the archive")
        raise RnnzipError("not an rnnzip archive (its first bytes are not the "
                          "rnnzip magic bytes)")
    if len(magic) < len(MAGIC):
        raise RnnzipError("truncated archive: it ends inside the header")
    fixed = r.read(_HEADER.size, "the header")
    version, flags, identity = _HEADER.unpack(fixed)
    if version != FORMAT_VERSION:
        raise RnnzipError(f"unsupported archive format version {version}; this "
                          f"rnnzip reads version {FORMAT_VERSION}, upgrade rnnzip")
    name_len = r.read(1, "the header")
    name = r.read(name_len[0], "the header")
    frame_size = r.read(4, "the header")
    number = r.read(1, "the header") if flags & FLAG_MIX else b""
    crc = _U32.unpack(r.read(4, "the header"))[0]
    head = magic + fixed + name_len + name + frame_size + number
    if zlib.crc32(head) != crc:
        raise RnnzipError("corrupt archive header (its checksum does not match)")
    if flags & FLAG_MIX_V1:
        raise RnnzipError("the archive was context-mixed by the first mixer of "
                          "rnnzip's development builds, which this rnnzip no longer "
                          "has; decode it with the build that wrote it")
    if flags & ~_KNOWN_FLAGS:
        raise RnnzipError(f"archive header has unknown flags {flags:#04x}; a newer "
                          f"rnnzip wrote it, upgrade rnnzip")
    if number and number[0] in RETIRED_PROFILES:
        raise RnnzipError(f"the archive was context-mixed with profile {number[0]} of "
                          f"an earlier mixer of rnnzip's development builds, which "
                          f"this rnnzip no longer has; decode it with the build "
                          f"that wrote it")
    if number and number[0] not in PROFILES:
        raise RnnzipError(f"archive header names context mixing profile "
                          f"{number[0]}, unknown to this rnnzip; upgrade rnnzip")
    info = ArchiveInfo(version=version, identity=identity,
                       mixer=PROFILES[number[0]] if number else None,
                       model_name=name.decode("utf-8", errors="replace"),
                       frame_size=_U32.unpack(frame_size)[0],
                       header_bytes=len(head) + 4)
    return info, r


def read_archive(stream, sink, resolve_engine, info_only=False,
                 progress=None, threads: int = 1) -> ArchiveInfo:
    """Decompress an archive from ``stream`` into ``sink.write``.

    ``resolve_engine(name, identity_hex)`` returns the exact model to decode
    with (or raises). With ``info_only`` the frames are skipped, not decoded.
    Archives written one after another (``compress -c a b``) decode to the
    concatenation of their contents, as with gzip; the info then covers all
    of them, with ``members`` counting them. ``progress(n)`` is called with
    the archive bytes of each frame decoded. ``threads`` above 1 lets the
    network of a context-mixed archive run in a second process beside the
    mixer (:mod:`rnnzip.pipeline`), where the platform and the CPUs allow;
    0 means as many as there are CPUs. The output is the same either way.
    """
    with _Workers(threads) as workers:
        return _read_members(stream, sink, resolve_engine, info_only, progress,
                             workers)


class _Workers:
    """The network worker of a decoding, forked at its first mixed frame."""

    def __init__(self, threads: int):
        if threads < 0:
            raise ValueError(f"threads must be 0 (one per CPU) or more, not {threads}")
        self.wanted = (threads or usable_cpus()) > 1 and can_fork()
        self.worker = None

    def get(self, engine, rows: int, mixed: bool):
        """A worker for ``engine``'s frames of ``rows`` segments, or None."""
        if not (self.wanted and mixed and isinstance(engine, ExactModel)):
            return None  # MXNet must not be forked; unmixed frames gain nothing
        if self.worker is not None and self.worker.engine is not engine:
            self.close()
        if self.worker is None:
            try:
                self.worker = NetworkWorker(engine, MAX_SEGMENTS)
            except OSError:  # no process or memory to fork: decode here
                self.wanted = False
                return None
        return self.worker if rows <= self.worker.max_rows else None

    def close(self):
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_members(stream, sink, resolve_engine, info_only, progress, workers):
    r = _Reader(stream)
    crc_sink = _CrcSink(sink)
    total = None
    while True:
        info = _read_member(r, crc_sink, resolve_engine, info_only, progress,
                            workers)
        if total is None:
            total = info
        else:
            total.frames += info.frames
            total.original_size += info.original_size
            total.header_bytes += info.header_bytes
            total.members += 1
            total.crc = None if info_only else crc_sink.crc
        total.archive_size = r.offset
        if r.at_end():
            return total


class _CrcSink:
    """Pass data on, keeping the crc32 of all of it."""

    def __init__(self, sink):
        self.sink = sink
        self.crc = 0

    def write(self, data):
        self.crc = zlib.crc32(data, self.crc)
        return self.sink.write(data)


def _read_stored(r, info: ArchiveInfo, index: int) -> bytes | None:
    """Read a stored frame after its tag; return its bytes (None: info only)."""
    fields = r.read(_STORED.size, f"the header of frame {index}")
    (frame_crc,) = _U32.unpack(r.read(4, f"the header of frame {index}"))
    if zlib.crc32(b"S" + fields) != frame_crc:
        raise RnnzipError(f"corrupt header of frame {index} (its checksum does "
                          f"not match)")
    length, data_crc = _STORED.unpack(fields)
    if length == 0 or length > info.frame_size:
        raise RnnzipError(f"corrupt header of frame {index}: a stored frame of "
                          f"{length} bytes")
    data = r.read(length, f"the data of frame {index}")
    info.frames.append(FrameInfo(length, length, 1, 0, stored=True))
    info.header_bytes += 1 + len(fields) + 4
    if zlib.crc32(data) != data_crc:
        raise RnnzipError(f"checksum mismatch in frame {index}: the stored data is "
                          f"corrupt")
    return data


def _read_member(r, sink, resolve_engine, info_only, progress,
                 workers) -> ArchiveInfo:
    info, r = read_header(r)
    engine = None if info_only else resolve_engine(info.model_name,
                                                   info.identity.hex())
    crc = 0
    while True:
        tag = r.read(1, f"the tag after frame {len(info.frames)}")
        if tag == b"E":
            break
        if tag == b"S":
            data = _read_stored(r, info, len(info.frames) + 1)
            if data is not None:
                crc = zlib.crc32(data, crc)
                info.original_size += len(data)
                sink.write(data)
                if progress:
                    progress(len(data) + 1 + _STORED.size + 4)
            continue
        if tag != b"F":
            raise RnnzipError(f"corrupt archive: unknown tag {tag!r} at byte "
                              f"{r.offset - 1}")
        index = len(info.frames) + 1
        fields = r.read(_FRAME.size, f"the header of frame {index}")
        (frame_crc,) = _U32.unpack(r.read(4, f"the header of frame {index}"))
        if zlib.crc32(tag + fields) != frame_crc:
            raise RnnzipError(f"corrupt header of frame {index} (its checksum does "
                              f"not match)")
        length, seg_len, segments, num_words, data_crc = _FRAME.unpack(fields)
        if (length == 0 or length > info.frame_size or segments == 0
                or seg_len > length or seg_len * segments < length
                or seg_len * (segments - 1) >= length):
            raise RnnzipError(f"corrupt header of frame {index}: inconsistent "
                              f"layout ({length} bytes in {segments} segments "
                              f"of {seg_len})")
        payload = r.read(4 * num_words, f"the data of frame {index}")
        info.frames.append(FrameInfo(length, seg_len, segments, num_words))
        info.header_bytes += 1 + len(fields) + 4
        if info_only:
            continue
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        lengths = [seg_len] * (segments - 1) + [length - seg_len * (segments - 1)]
        try:
            network = workers.get(engine, segments, info.mix)
            data = decode_frame(engine, words, seg_len, lengths, info.mixer,
                                network=network)
        except (ValueError, RuntimeError, AssertionError, OverflowError) as exc:
            raise RnnzipError(f"checksum mismatch in frame {index}: the range "
                              f"coder failed ({exc}); the data is corrupt, or the "
                              f"model differs") from None
        if zlib.crc32(data) != data_crc:
            raise RnnzipError(f"checksum mismatch in frame {index}: the data is "
                              f"corrupt, or the model differs")
        crc = zlib.crc32(data, crc)
        info.original_size += len(data)
        sink.write(data)
        if progress:
            progress(1 + len(fields) + 4 + len(payload))
    fields = r.read(_TRAILER.size, "the trailer")
    (tail_crc,) = _U32.unpack(r.read(4, "the trailer"))
    if zlib.crc32(b"E" + fields) != tail_crc:
        raise RnnzipError("corrupt archive trailer (its checksum does not match)")
    frames, total, whole_crc = _TRAILER.unpack(fields)
    info.header_bytes += 1 + len(fields) + 4
    if frames != len(info.frames):
        raise RnnzipError(f"corrupt archive: the trailer counts {frames} frames, "
                          f"the archive holds {len(info.frames)}")
    if info_only:
        info.original_size, info.crc = total, whole_crc
    elif total != info.original_size or whole_crc != crc:
        raise RnnzipError("checksum mismatch of the whole archive: the data is "
                          "corrupt, or the model differs")
    info.crc = whole_crc
    return info
