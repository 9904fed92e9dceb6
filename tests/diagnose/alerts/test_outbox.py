"""The outbox: persisted before sending, FIFO per group, duplicates of pending content dropped, survives reopening."""
from diagnose.alerts.model import Alert, Notification
from diagnose.alerts.outbox import DELIVERED, PENDING, Outbox


def note(i, group="g1", status="firing", receiver="r"):
    a = Alert(fingerprint=f"fp{i}", labels={"alertname": "X"}, annotations={}, status=status, starts_at=0.0)
    return Notification(id=f"msg_{i}_{status}", receiver=receiver, group_key=group, group_labels={}, alerts=[a], created_at=float(i))


def test_reopened_outbox_keeps_pending_notifications_and_state(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([note(1), note(2, group="g2")], {"groups": ["x"]})
    box.close()
    box = Outbox(tmp_path / "o.sqlite")
    assert [e.id for e in box.due(now=100)] == ["msg_1_firing", "msg_2_firing"]
    assert box.load_state() == {"groups": ["x"]}
    box.close()


def test_one_group_is_delivered_in_order(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([note(1), note(1, status="resolved"), note(3, group="g2")])
    first = box.due(now=10)
    assert [e.id for e in first] == ["msg_1_firing", "msg_3_firing"]
    box.mark(first[0].seq, PENDING, 10, "HTTP 500", next_attempt_at=50)
    # the resolved notice must not overtake the firing one being retried
    assert [e.id for e in box.due(now=20)] == ["msg_3_firing"]
    # the sender sleeps until the head is due, not until the queued resolved notice (created at 1)
    assert box.next_attempt_at("r") == 3.0
    box.mark(box.due(now=20)[0].seq, DELIVERED, 20)
    assert box.next_attempt_at("r") == 50.0
    retry = box.due(now=50)
    assert retry[0].id == "msg_1_firing" and retry[0].attempts == 1 and retry[0].last_error == "HTTP 500"
    box.mark(retry[0].seq, DELIVERED, 50)
    assert [e.id for e in box.due(now=50)] == ["msg_1_resolved"]
    assert box.counts() == {"r": {"delivered": 2, "pending": 1}}
    box.close()


def test_duplicate_of_pending_content_is_dropped_but_not_of_delivered(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    first = note(1)
    assert box.commit([first]) == [first]
    again = note(1)
    again.id = "msg_repeat"
    assert box.commit([again]) == []
    box.mark(box.due(now=5)[0].seq, DELIVERED, 5)
    assert box.commit([again]) == [again]
    assert box.prune(older_than=100) == 1
    box.close()
