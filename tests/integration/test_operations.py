"""Operating a real daemon: ``paxd gc`` beside Debian's ``docker-registry garbage-collect``,
online collection while serving, and the debug listener's ``/metrics`` and ``/debug/health``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from paxd.registry import layout
from paxd.registry.lease import Lease
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.readers import BytesReader
from paxd.threadpool import SynchronousRunner
from tests.integration.harness import (
    REPO_ROOT,
    _child_env,
    free_port,
    http_request,
    registry_config,
    require_paxd,
    require_tool,
    run_tool,
    start_paxd,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIGNED_CONFIG_BYTES = json.dumps({"architecture": "amd64", "os": "linux", "signed": True}).encode()
SIGNED_CONFIG = Digest.of(SIGNED_CONFIG_BYTES)


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


class Storage:
    """A filesystem registry written in-process by paxd's own stores (distribution's layout)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.driver = FilesystemStorage(root, SynchronousRunner())
        self.registry = Registry(self.driver, delete_enabled=True, parent_tags=False)
        self.registry.start()

    def ok(self, d: Deferred[Any]) -> Any:
        result: list[Any] = []
        d.addBoth(result.append)
        if hasattr(result[0], "raiseException"):
            result[0].raiseException()
        return result[0]

    def blob(self, name: str, data: bytes) -> Digest:
        digest = Digest.of(data)
        self.ok(self.registry.repository(name).uploads.push(str(digest), BytesReader(data)))
        return digest

    def image(self, name: str, ref: str, layer: bytes, **extra: Any) -> Digest:
        config = json.dumps({"architecture": "amd64", "os": "linux", "layer": len(layer)}).encode()
        self.blob(name, config)
        self.blob(name, layer)
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
            **extra,
        }
        content = json.dumps(doc).encode()
        manifests = self.registry.repository(name).manifests
        self.ok(manifests.put(ref, BytesReader(content), OCI_MANIFEST))
        return Digest.of(content)

    def blobs(self) -> set[str]:
        base = Path(self.root) / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}" for p in base.glob("*/*/data")}


def paxd_gc_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "paxd", "gc", *args]


class GarbageCollectCommandTests(TestCase):
    """``paxd gc`` offline, against the reference's ``garbage-collect`` on the same data."""

    timeout = 120

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).absolute()
        self.tmp.mkdir()

    def write_config(self, root: Path, name: str) -> str:
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(registry_config(root, log={"level": "warn"})))
        return str(path)

    def build(self) -> tuple[Storage, dict[str, Digest]]:
        store = Storage(str(self.tmp / "data"))
        made = {
            "kept": store.image("app", "1.0", b"kept layer"),
            "gone": store.image("app", "2.0", b"deleted layer"),
        }
        # signed by digest: the image has no tag, its signature has cosign's kind of tag
        subject_manifest = made["subject"] = self._untagged_subject(store)
        signature = store.image(
            "signed",
            f"sha256-{subject_manifest.hex}.sig",
            b"a signature",
            subject=descriptor(OCI_MANIFEST, self._subject_content),
            artifactType="application/vnd.example.signature",
        )
        made["signature"] = signature
        repository = store.registry.repository("app")
        store.ok(repository.manifests.delete(str(made["gone"])))
        return store, made

    def _untagged_subject(self, store: Storage) -> Digest:
        layer = b"signed layer"
        config = SIGNED_CONFIG_BYTES
        store.blob("signed", config)
        store.blob("signed", layer)
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
        }
        self._subject_content = json.dumps(doc).encode()
        digest = Digest.of(self._subject_content)
        manifests = store.registry.repository("signed").manifests
        store.ok(manifests.put(str(digest), BytesReader(self._subject_content), OCI_MANIFEST))
        return digest

    async def test_paxd_keeps_what_distribution_deletes_and_deletes_the_rest_alike(self) -> None:
        distribution = require_tool("docker-registry")
        require_paxd()
        store, made = self.build()
        before = store.blobs()
        theirs, ours = self.tmp / "theirs", self.tmp / "ours"
        shutil.copytree(store.root, theirs)
        shutil.copytree(store.root, ours)
        await run_tool(
            [distribution, "garbage-collect", "--delete-untagged", self.write_config(theirs, "d")]
        )
        result = await run_tool(
            paxd_gc_argv("--delete-untagged", "--grace", "0s", self.write_config(ours, "p")),
            env=_child_env(),
        )
        self.assertIn(b"deleted", result.stdout)
        left_theirs, left_ours = Storage(str(theirs)).blobs(), Storage(str(ours)).blobs()
        subject_blobs = {str(made["subject"]), str(Digest.of(b"signed layer")), str(SIGNED_CONFIG)}
        # distribution deletes the signed image, which its signature still names
        self.assertEqual(subject_blobs & left_theirs, set())
        self.assertLessEqual(subject_blobs, left_ours)
        self.assertFalse((theirs / layout.revision_link("signed", made["subject"])[1:]).exists())
        # everything else, both delete alike: the deleted pack's blobs
        self.assertEqual(before - left_ours, before - left_theirs - subject_blobs)
        self.assertNotIn(str(made["gone"]), left_ours)
        self.assertIn(str(made["kept"]), left_ours)
        # and paxd serves the signed image and lists its signature
        daemon = await start_paxd(registry_config(ours), self.tmp / "serve", self)
        subject = await http_request(
            "GET",
            f"{daemon.url}/v2/signed/manifests/{made['subject']}",
            headers={"Accept": OCI_MANIFEST},
        )
        self.assertEqual(subject.status, 200, subject.describe())
        referrers = await http_request("GET", f"{daemon.url}/v2/signed/referrers/{made['subject']}")
        self.assertEqual(
            [m["digest"] for m in referrers.json()["manifests"]], [str(made["signature"])]
        )

    async def test_dry_run_deletes_nothing(self) -> None:
        require_paxd()
        store, made = self.build()
        before = store.blobs()
        result = await run_tool(
            paxd_gc_argv("--dry-run", "--grace", "0s", self.write_config(Path(store.root), "p")),
            env=_child_env(),
        )
        self.assertIn(f"would delete blob {made['gone']}".encode(), result.stdout)
        self.assertIn(b"would delete 3 blobs", result.stdout)
        self.assertEqual(store.blobs(), before)

    async def test_one_collector_at_a_time(self) -> None:
        require_paxd()
        store, made = self.build()
        config = self.write_config(Path(store.root), "p")
        lease = Lease(store.driver, time.time, ttl=600, owner="test:1:holder")
        store.ok(Deferred.fromCoroutine(lease.acquire()))
        busy = await run_tool(paxd_gc_argv("--grace", "0s", config), env=_child_env(), check=False)
        self.assertEqual(busy.returncode, 75, busy.describe())
        self.assertIn(b"test:1:holder", busy.stderr)
        self.assertIn(str(made["gone"]), store.blobs())
        store.ok(Deferred.fromCoroutine(lease.release()))
        done = await run_tool(paxd_gc_argv("--grace", "0s", config), env=_child_env())
        self.assertIn(b"deleted 3 blobs", done.stdout)
        self.assertNotIn(str(made["gone"]), store.blobs())

    async def test_the_grace_window_keeps_fresh_blobs(self) -> None:
        require_paxd()
        store, made = self.build()
        done = await run_tool(
            paxd_gc_argv(self.write_config(Path(store.root), "p")), env=_child_env()
        )
        self.assertIn(b"deleted 0 blobs", done.stdout)
        self.assertIn(str(made["gone"]), store.blobs())


class UsageTests(SynchronousTestCase):
    def test_help_and_bad_arguments(self) -> None:
        import subprocess

        env = _child_env()
        helped = subprocess.run(paxd_gc_argv("--help"), capture_output=True, env=env, cwd=REPO_ROOT)
        self.assertEqual(helped.returncode, 0)
        self.assertIn(b"--delete-untagged", helped.stdout)
        self.assertIn(b"75", helped.stdout)
        listed = subprocess.run(
            [sys.executable, "-m", "paxd", "--help"], capture_output=True, env=env, cwd=REPO_ROOT
        )
        self.assertIn(b"gc", listed.stdout)
        missing = subprocess.run(
            paxd_gc_argv("/nonexistent.yml"), capture_output=True, env=env, cwd=REPO_ROOT
        )
        self.assertEqual(missing.returncode, 1)
        self.assertIn(b"/nonexistent.yml", missing.stderr)
        config = Path(self.mktemp()).absolute()
        config.write_text("version: 0.1\nstorage: inmemory\n")
        bad = subprocess.run(
            paxd_gc_argv("--grace", "soon", str(config)),
            capture_output=True,
            env=env,
            cwd=REPO_ROOT,
        )
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn(b"--grace", bad.stderr)


class OnlineOperationsTests(TestCase):
    """A daemon collecting while it serves, with its metrics on the debug listener."""

    timeout = 120

    async def test_online_collection_and_metrics(self) -> None:
        root = Path(self.mktemp()).absolute()
        debug_port = free_port()
        config = registry_config(
            root,
            http={
                "debug": {
                    "addr": f"127.0.0.1:{debug_port}",
                    "prometheus": {"enabled": True, "path": "/metrics"},
                }
            },
        )
        config["storage"]["maintenance"] = {
            # a grace of a few seconds: the blobs pushed below stay until their manifest
            # references them (grace 0 lets a run collect them in between, as it should)
            "gc": {"enabled": True, "interval": "1s", "grace": "3s"}
        }
        daemon = await start_paxd(config, root.parent / "daemon", self)
        base = f"{daemon.url}/v2/app"
        layer = os.urandom(4096)
        config_blob = b'{"architecture":"amd64","os":"linux"}'
        for data in (layer, config_blob):
            pushed = await http_request(
                "POST", f"{base}/blobs/uploads/?digest={Digest.of(data)}", body=data
            )
            self.assertEqual(pushed.status, 201, pushed.describe())
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", config_blob),
                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
            }
        ).encode()
        put = await http_request(
            "PUT", f"{base}/manifests/1.0", body=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        self.assertEqual(put.status, 201, put.describe())
        gone = await http_request("DELETE", f"{base}/manifests/{Digest.of(manifest)}")
        self.assertEqual(gone.status, 202, gone.describe())
        data = root / "docker/registry/v2/blobs/sha256" / Digest.of(layer).hex[:2]
        for _ in range(200):
            if not (data / Digest.of(layer).hex).exists():
                break
            await deferLater(_reactor(), 0.1, lambda: None)
        self.assertFalse((data / Digest.of(layer).hex).exists(), daemon.logs())
        debug = f"http://127.0.0.1:{debug_port}"
        health = await http_request("GET", f"{debug}/debug/health")
        self.assertEqual((health.status, health.json()), (200, {}))
        # the run that removed the blob ends (and is counted) a moment later
        for _ in range(200):
            scraped = await http_request("GET", f"{debug}/metrics")
            self.assertEqual(scraped.status, 200)
            text = scraped.body.decode()
            samples = {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line and not line.startswith("#")
            }
            if samples["paxd_gc_reclaimed_bytes_total"] >= len(layer):
                break
            await deferLater(_reactor(), 0.1, lambda: None)
        self.assertGreaterEqual(samples["paxd_gc_reclaimed_bytes_total"], len(layer))
        self.assertGreaterEqual(samples['paxd_gc_runs_total{result="ok"}'], 1)
        key = 'paxd_http_requests_total{code="201",endpoint="manifests",method="PUT"}'
        self.assertEqual(samples[key], 1)
        self.assertIn(
            'paxd_storage_operation_duration_seconds_count{driver="filesystem",operation="move"}',
            samples,
        )
        self.assertIn("paxd_build_info{", text)
        # the registry's own listener serves no metrics
        self.assertEqual((await http_request("GET", f"{daemon.url}/metrics")).status, 404)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor
