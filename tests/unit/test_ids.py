"""Node and blob ids: random UUIDv4 strings, never repeated across forked processes."""

import os
import uuid

from infiniscale.core.model.ids import new_id


def test_ids_are_canonical_version_4_uuids():
    for _ in range(20_000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, hyphenated, 36 characters
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_differ():
    assert len({new_id() for _ in range(20_000)}) == 20_000


def test_a_forked_process_draws_other_ids_than_its_parent():
    read_end, write_end = os.pipe()
    new_id()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without running the test machinery
        os.write(write_end, " ".join(new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = os.read(read_end, 4096).decode().split()
    os.close(read_end)
    parent = [new_id() for _ in range(3)]
    assert len(child) == 3
    assert not set(child) & set(parent)
