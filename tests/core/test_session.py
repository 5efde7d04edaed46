"""The labeling session as the GUI drives it: edits, undo/redo, live scores, no Qt."""
import os
import threading

import numpy as np
import pytest

from app.core.backbones import Identity
from app.core.embedding import Embedder
from app.core.learners import MAML, ProtoNet
from app.core.model import FewShotModel, InputSpec
from app.core.events import Topic
from app.core.scan import scan_folder
from app.core.errors import ScoringError
from app.core.session import Session
from tests.imaging_helpers import bad_files, solid, tiny_model

D = 6


def feature_model(methods=("protonet", "maml")):
    learners = {"protonet": ProtoNet(),
                "maml": MAML(neck={"name": "feature", "in_dim": D}, adapt="head", head_init="proto",
                             inner_steps=3, inner_lr=0.1)}
    return FewShotModel(Identity((D,)), {m: learners[m] for m in methods},
                        InputSpec(size=(2, 3), channels=1, mean=(0.0,), std=(1.0,), resize="stretch"))


def onehot(k, n=1, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(0, noise, (n, D)).astype(np.float32)
    f[:, k] += 1.0
    return f


@pytest.fixture
def folder(tmp_path):
    """Paths of a folder: 0..9; the truth is class index i % 3 (features made to match)."""
    paths = [str(tmp_path / f"img{i:02}.png") for i in range(12)]
    truth = [i % 3 for i in range(12)]
    feats = np.concatenate([onehot(t, seed=i) for i, t in enumerate(truth)])
    return paths, truth, feats


def test_class_edits_undo_redo_and_events():
    s = Session()
    events = []
    s.subscribe(lambda ev: events.append(ev.topic))
    cat = s.add_class("cat")
    dog = s.add_class("dog", "#00FF00")
    assert [c.name for c in s.classes] == ["cat", "dog"] and dog.colour == "#00ff00"
    auto = s.add_class()
    assert auto.name == "Class 3" and auto.colour.startswith("#")
    s.rename_class(cat.id, "kitten")
    s.recolour_class(cat.id, "#123456")
    for bad in ("", "  ", "DOG", "unknown"):
        with pytest.raises(ValueError):
            s.rename_class(cat.id, bad)
    with pytest.raises(ValueError):
        s.recolour_class(cat.id, "red")
    assert s.class_by_id(cat.id).name == "kitten" and s.class_by_id(cat.id).colour == "#123456"
    assert s.undo_label == "Undo Change colour of kitten"
    s.undo()
    s.undo()
    assert s.class_by_id(cat.id).name == "cat" and s.class_by_id(cat.id).colour != "#123456"
    assert s.redo_label == "Redo Rename class cat to kitten"
    s.redo()
    assert s.class_by_id(cat.id).name == "kitten"
    s.delete_class(auto.id)
    s.move_class(dog.id, 0)
    assert s.class_at(0).id == dog.id
    s.undo()
    s.undo()
    assert [c.id for c in s.classes] == [cat.id, dog.id, auto.id]
    while s.can_undo:
        s.undo()
    assert s.classes == [] and s.can_redo and not s.can_undo
    assert {Topic.CLASSES, Topic.HISTORY, Topic.STALE, Topic.MODIFIED} <= set(events)


def test_examples_files_folders_move_remove_and_delete_class(tmp_path):
    a = solid(tmp_path / "ex" / "a.png", "red")
    b = solid(tmp_path / "ex" / "sub" / "b.jpg", "red")
    c = solid(tmp_path / "c.png", "blue")
    (tmp_path / "ex" / "notes.txt").write_text("x")
    s = Session()
    changed = []
    s.subscribe(lambda ev: changed.append(list(ev.paths)) if ev.topic is Topic.EXAMPLES else None)
    red, blue = s.add_class("red"), s.add_class("blue")
    assert s.add_examples(red.id, [tmp_path / "ex", c]) == [str(a), str(b), str(c)]
    assert changed[-1] == [str(a), str(b), str(c)]
    assert s.add_examples(red.id, [a]) == []  # already there: no edit, no undo step
    assert s.undo_label == "Undo Add 3 examples to red"
    s.add_examples(blue.id, [c])  # moves
    assert s.example(str(c)).class_id == blue.id and len(s.examples_of(red.id)) == 2
    s.remove_examples([a])
    assert s.example(str(a)) is None
    s.delete_class(red.id)
    assert [e.path for e in s.examples] == [str(c)]
    s.undo()  # class and its example come back together
    assert s.class_at(0).id == red.id and {e.path for e in s.examples_of(red.id)} == {str(b)}
    s.undo()
    s.undo()
    assert s.example(str(a)).class_id == red.id and s.example(str(c)).class_id == red.id


def _scored_session(folder, model, n_ex=1):
    paths, truth, feats = folder
    s = Session()
    ids = [s.add_class(n).id for n in ("a", "b", "c")]
    s.set_folder("/photos", paths)
    for k in range(3):
        s.add_examples(ids[k], [p for p, t in zip(paths, truth) if t == k][:n_ex])
    return s, ids


def test_scoring_needs_two_classes_then_predicts_and_streams(folder):
    paths, truth, feats = folder
    model = feature_model()
    s = Session()
    a = s.add_class("a")
    s.set_folder("/photos", paths)
    s.add_examples(a.id, [paths[0]])
    s.add_features(paths, feats)
    assert s.make_score_job() is None and s.rescore(model) is False
    b, c = s.add_class("b"), s.add_class("c")
    ids = [a.id, b.id, c.id]
    s.add_examples(b.id, [paths[1]])
    assert s.scores_stale and s.rescore(model)
    assert not s.scores_stale
    # class c has no example yet: everything goes to a or b
    cls, conf = s.prediction_arrays()
    assert set(cls.tolist()) <= {a.id, b.id} and np.all(conf > 0)
    s.add_examples(c.id, [paths[2]])
    assert s.scores_stale
    s.rescore(model)
    cls, conf = s.prediction_arrays()
    assert cls.tolist() == [ids[t] for t in truth]
    assert s.prediction(paths[0]).source == "example" and s.prediction(paths[3]).source == "predicted"
    assert s.prediction(paths[3]).label == "a"


def test_features_streamed_after_fit_are_predicted_at_once(folder):
    paths, truth, feats = folder
    s, ids = _scored_session(folder, None)
    s.add_features(paths[:3], feats[:3])  # the three examples
    s.rescore(feature_model())
    assert s.prediction(paths[5]).source == "pending"
    seen = []
    s.subscribe(lambda ev: seen.append(ev.paths) if ev.topic is Topic.PREDICTIONS else None)
    s.add_features(paths[3:8], feats[3:8])
    assert seen and set(seen[-1]) == set(paths[3:8])
    assert [s.prediction(p).class_id for p in paths[3:8]] == [ids[t] for t in truth[3:8]]
    assert s.prediction(paths[9]).source == "pending"
    s.add_features([], np.zeros((0, D), np.float32), problems=[(paths[9], "truncated file")])
    assert s.prediction(paths[9]).source == "problem" and s.problems[paths[9]] == "truncated file"
    assert paths[9] not in s.paths_needing_features() and paths[10] in s.paths_needing_features()
    rows = s.result_rows()
    assert {r.path for r in rows} == set(paths[:8])


def test_threshold_unknown_and_slider_is_one_undo_step(folder):
    paths, truth, feats = folder
    s, ids = _scored_session(folder, None)
    s.add_features(paths, feats)
    s.add_features([paths[11]], (onehot(0) + onehot(1))[:1] / 1.0)  # ambiguous: between a and b
    s.rescore(feature_model())
    amb = s.prediction(paths[11]).confidence
    assert amb < 0.9
    for t in (0.1, 0.3, (amb + 1) / 2):
        s.set_threshold(t)
    assert s.prediction(paths[11]).label == "unknown" and s.prediction(paths[11]).class_id is None
    assert s.prediction(paths[4]).label == "b"
    cls, _ = s.prediction_arrays()
    assert cls[11] == -1 and cls[4] == ids[1]
    assert any(r.path == paths[11] and r.label == "unknown" for r in s.result_rows())
    s.undo()  # the whole slider drag is one undo step
    assert s.threshold == 0.0 and s.prediction(paths[11]).label in ("a", "b")


def test_correction_becomes_example_and_undo(folder):
    paths, truth, feats = folder
    s, ids = _scored_session(folder, None)
    s.add_features(paths, feats)
    model = feature_model()
    s.rescore(model)
    p = paths[4]  # truth b
    s.assign([p], ids[2])
    pr = s.prediction(p)
    assert (pr.class_id, pr.source, pr.confidence) == (ids[2], "corrected", 1.0)
    assert s.undo_label == "Undo Assign 1 image to c"
    s.rescore(model)
    s.undo()
    assert s.prediction(p).source == "predicted" and s.scores_stale
    s.rescore(model)
    assert s.prediction(p).class_id == ids[1]


def test_worker_job_snapshot_and_stale_result(folder):
    paths, truth, feats = folder
    s, ids = _scored_session(folder, None)
    s.add_features(paths, feats)
    model = feature_model()
    job = s.make_score_job()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", job.run(model, threading.Event())))
    t.start()
    s.assign([paths[5]], ids[0])  # the user keeps working meanwhile
    t.join()
    assert s.apply_scores(out["r"]) is False and s.scores_stale
    assert s.prediction(paths[6]).class_id == ids[0]  # results shown anyway
    assert s.apply_scores(s.make_score_job().run(model)) is True


def test_maml_method_and_missing_method(folder):
    paths, truth, feats = folder
    s, ids = _scored_session(folder, None, n_ex=2)
    s.add_features(paths, feats)
    s.set_method("maml")
    assert s.rescore(feature_model())
    cls, _ = s.prediction_arrays()
    assert cls.tolist() == [ids[t] for t in truth]
    with pytest.raises(ScoringError, match="no 'maml' method"):
        s.rescore(feature_model(("protonet",)))
    with pytest.raises(ValueError):
        s.set_method("")
    s.set_method("knn")  # any learner key; the model says whether it has one
    with pytest.raises(ScoringError, match="no 'knn' method"):
        s.rescore(feature_model())
    s.undo()
    s.undo()
    assert s.method == ""  # a new session follows the model's default


def test_hundred_thousand_images_rescore(tmp_path):
    n = 100_000
    paths = [f"/big/{i:06}.jpg" for i in range(n)]
    truth = np.arange(n) % 2
    feats = np.random.default_rng(0).normal(0, 0.05, (n, D)).astype(np.float32)
    feats[np.arange(n), truth] += 1.0
    s = Session()
    a, b = s.add_class("a"), s.add_class("b")
    s.set_folder("/big", paths)
    s.add_examples(a.id, [paths[0]])
    s.add_examples(b.id, [paths[1]])
    for i in range(0, n, 25_000):  # streamed in batches
        s.add_features(paths[i:i + 25_000], feats[i:i + 25_000])
    assert s.rescore(feature_model())
    cls, conf = s.prediction_arrays()
    assert np.array_equal(cls, np.where(truth == 0, a.id, b.id))


def test_real_images_through_the_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))
    for i in range(3):
        solid(tmp_path / "photos" / f"red{i}.png", "red", seed=i)
        solid(tmp_path / "photos" / f"blue{i}.png", "blue", seed=10 + i)
    bad = bad_files(tmp_path / "photos" / "bad")
    ex_r = solid(tmp_path / "ex" / "r.png", "red", seed=99)
    ex_b = solid(tmp_path / "ex" / "b.png", "blue", seed=98)
    model = tiny_model()
    s = Session()
    red, blue = s.add_class("red"), s.add_class("blue")
    s.add_examples(red.id, [ex_r])
    s.add_examples(blue.id, [ex_b])
    s.set_folder(tmp_path / "photos", scan_folder(tmp_path / "photos"))
    todo = s.paths_needing_features()
    assert todo[:2] == [str(ex_r), str(ex_b)]
    for batch in Embedder(model, device="cpu", batch_size=4).iter_embed(todo):
        s.add_features(batch.paths, batch.features, batch.problems)
    assert set(s.problems) == set(bad)
    for p, reason in bad.items():
        assert reason.split("|")[0] in s.problems[p]
    assert s.rescore(model)
    for p in s.images:
        if p in bad:
            continue
        assert s.prediction(p).label == ("red" if "red" in p.rsplit("/", 1)[1] else "blue")


def test_separate_slider_drags_are_separate_undo_steps():
    s = Session()
    for t in (0.1, 0.2):
        s.set_threshold(t)
    s.history.seal()  # slider released
    for t in (0.5, 0.6):
        s.set_threshold(t)
    s.undo()
    assert s.threshold == 0.2
    s.undo()
    assert s.threshold == 0.0 and not s.can_undo
    s.redo()
    s.redo()
    assert s.threshold == 0.6


def test_a_failing_listener_does_not_break_edits_or_undo(caplog):
    s = Session()
    got = []

    def bad(ev):
        raise RuntimeError("view bug")
    s.subscribe(bad)
    unsubscribe = s.subscribe(lambda ev: got.append(ev.topic))
    c = s.add_class("a")
    s.rename_class(c.id, "b")
    s.undo()
    assert s.class_by_id(c.id).name == "a" and s.can_redo
    assert "view bug" in caplog.text and Topic.CLASSES in got
    unsubscribe()
    n = len(got)
    s.redo()
    assert len(got) == n


def test_moved_files_keep_examples_features_and_predictions(tmp_path):
    from app.core.export import apply_plan, plan_files

    photos = tmp_path / "photos"
    ex_r = solid(tmp_path / "ex" / "r.png", "red", seed=1)
    ex_b = solid(tmp_path / "ex" / "b.png", "blue", seed=2)
    for c in ("red", "blue"):
        for i in range(2):
            solid(photos / f"{c}{i}.png", c, seed=10 + i)
    model = tiny_model()
    s = Session()
    red, blue = s.add_class("red"), s.add_class("blue")
    s.add_examples(red.id, [ex_r])
    s.add_examples(blue.id, [ex_b])
    s.set_folder(photos, scan_folder(photos))
    r = Embedder(model, device="cpu").embed_paths(s.paths_needing_features())
    s.add_features(r.paths, r.features, r.problems)
    s.rescore(model)
    before = {p: s.prediction(p).label for p in s.images}
    report = apply_plan(plan_files(s.result_rows(), photos / "sorted"), "move")
    assert len(report.done) == 6 and not report.failed
    s.relocate([(op.source, op.target) for op in report.done])
    assert {e.path for e in s.examples} == {str(photos / "sorted" / "red" / "r.png"),
                                            str(photos / "sorted" / "blue" / "b.png")}
    s.set_folder(photos, scan_folder(photos))  # the GUI rescans the folder after a move
    assert s.paths_needing_features() == []     # nothing is embedded again
    s.rescore(model)
    for old, label in before.items():
        new = str(photos / "sorted" / label / os.path.basename(old))
        assert s.prediction(new).label == label


def test_score_jobs_follow_new_features_and_moved_files(folder):
    """The folder's located rows are kept between jobs, and renewed when features arrive or
    files move."""
    paths, truth, feats = folder
    s = Session()
    ids = [s.add_class(n).id for n in "abc"]
    s.set_folder("/photos", paths)
    for k in range(3):
        s.add_examples(ids[k], [paths[k]])
    s.add_features(paths[:6], feats[:6])
    first = s.make_score_job()
    assert first.query_paths == paths[:6] and s.make_score_job().query_paths == paths[:6]
    s.add_features(paths[6:], feats[6:])
    assert s.make_score_job().query_paths == paths
    moved = paths[7].replace("img07", "moved07")
    s.relocate([(paths[7], moved)])
    job = s.make_score_job()
    assert job.query_paths[7] == moved and len(job.query_paths) == len(paths)
    assert first.query_paths == paths[:6]  # a job's snapshot is its own
    s.apply_scores(job.run(feature_model()))
    assert [s.prediction(p).class_id for p in s.images] == [ids[t] for t in truth]
