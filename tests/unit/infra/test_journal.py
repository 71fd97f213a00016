"""The journal's file format: records round-trip, a torn tail is cut off,
segments seal at their size, and concurrent writers all get their records."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from infra.journal import Journal, JournalClosed, Write, read_segment, segments


def write(n: int) -> Write:
    return Write("DynamoDB_20120810.PutItem", "us-east-1", "local", f'{{"n": {n}}}'.encode())


def appended(journal: Journal, *writes: Write) -> int:
    last = 0
    for one in writes:
        with journal.order:
            last = journal.append(one)
    journal.sync(last)
    return last


def test_records_read_back_in_the_order_they_were_appended(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1)
    appended(journal, *(write(n) for n in range(5)))
    journal.close()
    [(number, path)] = segments(tmp_path)
    assert number == 1
    assert list(read_segment(path)) == [write(n) for n in range(5)]


def test_a_torn_last_record_is_cut_off_and_the_whole_ones_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1)
    appended(journal, write(1), write(2))
    journal.close()
    [(_, path)] = segments(tmp_path)
    whole = path.stat().st_size
    with path.open("ab") as handle:  # a crash in the middle of a third append
        handle.write(b"\x00\x00\x01\x00garbage")
    assert list(read_segment(path)) == [write(1), write(2)]
    assert path.stat().st_size == whole


def test_a_record_whose_checksum_fails_ends_the_segment(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1)
    appended(journal, write(1), write(2))
    journal.close()
    [(_, path)] = segments(tmp_path)
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # a flipped byte inside the second record
    path.write_bytes(bytes(data))
    assert list(read_segment(path)) == [write(1)]


def test_a_segment_seals_past_its_size_and_says_so(tmp_path: Path) -> None:
    sealed: list[int] = []
    journal = Journal(tmp_path, 7, rotate_bytes=200, on_seal=sealed.append)
    appended(journal, *(write(n) for n in range(10)))
    journal.close()
    numbers = [number for number, _ in segments(tmp_path)]
    assert numbers[0] == 7 and numbers == list(range(7, 7 + len(numbers)))
    assert sealed == numbers[:-1] and len(sealed) >= 2
    read = [one for _, path in segments(tmp_path) for one in read_segment(path)]
    assert read == [write(n) for n in range(10)]


def test_concurrent_writers_each_return_once_their_record_is_synced(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1, rotate_bytes=2_000)
    numbers: list[int] = []
    lock = threading.Lock()

    def writer(first: int) -> None:
        for n in range(first, first + 50):
            with journal.order:
                record = journal.append(write(n))
            journal.sync(record)
            with lock:
                numbers.append(record)

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    assert sorted(numbers) == list(range(1, 401))
    read = [one for _, path in segments(tmp_path) for one in read_segment(path)]
    assert sorted(read, key=lambda w: w.body) == sorted(
        (write(k * 1000 + n) for k in range(8) for n in range(50)), key=lambda w: w.body
    )


def test_the_last_words_of_a_close_see_the_open_segment_and_no_write_follows(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, 3)
    appended(journal, write(1))
    seen: list[int] = []
    journal.close(last_words=seen.append)
    assert seen == [3]
    with pytest.raises(JournalClosed), journal.order:
        journal.append(write(2))
