"""The S3 driver's parts that need no server: options, key layout, segment tables, errors."""

from __future__ import annotations

import itertools

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
)
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from paxd.storage.interface import PathNotFound, StorageError, StorageUnavailable
from paxd.storage.s3.bucket import Bucket, translate
from paxd.storage.s3.options import MAX_PART, MIN_PART, MiB, S3Options
from paxd.storage.s3.segments import (
    Segment,
    Table,
    copy_ranges,
    is_hidden,
    is_table,
    segment_prefix,
)

ENDPOINT = {"bucket": "b", "regionendpoint": "http://127.0.0.1:9000"}


class OptionsTests(SynchronousTestCase):
    """S3Options reads distribution's keys as distribution reads them."""

    def test_defaults_are_distributions(self) -> None:
        o = S3Options(**ENDPOINT)
        self.assertEqual(o.chunksize, 10 * MiB)
        self.assertEqual(o.multipartcopychunksize, 32 * MiB)
        self.assertEqual(o.multipartcopymaxconcurrency, 100)
        self.assertEqual(o.multipartcopythresholdsize, 32 * MiB)
        self.assertEqual(o.storageclass, "STANDARD")
        self.assertTrue(o.secure)
        self.assertTrue(o.v4auth)
        self.assertFalse(o.encrypt)
        self.assertEqual(o.rootdirectory, "")

    def test_strings_convert(self) -> None:
        o = S3Options(
            bucket="b",
            region="eu-west-1",
            secure="false",
            encrypt="true",
            chunksize="5242880",
            storageclass="reduced_redundancy",
        )
        self.assertFalse(o.secure)
        self.assertTrue(o.encrypt)
        self.assertEqual(o.chunksize, 5 * MiB)
        self.assertEqual(o.storageclass, "REDUCED_REDUNDANCY")

    def test_refused_values_name_the_key(self) -> None:
        for settings, words in [
            ({"chunksize": MIN_PART - 1}, "chunksize"),
            ({"chunksize": "ten"}, "integer"),
            ({"multipartcopychunksize": MAX_PART + 1}, "multipartcopychunksize"),
            ({"multipartcopymaxconcurrency": 0}, "multipartcopymaxconcurrency"),
            ({"storageclass": "GLACIER"}, "storageclass"),
            ({"secure": "maybe"}, "boolean"),
            ({"objectacl": "everyone"}, "objectacl"),
            ({"accesskey": "only-half"}, "accesskey and secretkey"),
            ({"host": "minio"}, "regionendpoint or host"),
            ({"readtimeout": 0}, "readtimeout"),
        ]:
            with self.assertRaises(ValueError, msg=repr(settings)) as caught:
                S3Options(**{**ENDPOINT, **settings})
            self.assertIn(words, str(caught.exception), settings)

    def test_region_required_on_amazon(self) -> None:
        with self.assertRaises(ValueError) as caught:
            S3Options(bucket="b")
        self.assertIn("region", str(caught.exception))
        self.assertIsNone(S3Options(bucket="b", region="us-east-2").endpoint_url)

    def test_v2_refused_on_amazon(self) -> None:
        with self.assertRaises(ValueError):
            S3Options(bucket="b", region="us-east-1", v4auth=False)
        self.assertFalse(S3Options(**ENDPOINT, v4auth=False).v4auth)

    def test_endpoint_scheme_from_secure(self) -> None:
        self.assertEqual(
            S3Options(bucket="b", regionendpoint="rgw.local:7480").endpoint_url,
            "https://rgw.local:7480",
        )
        self.assertEqual(
            S3Options(bucket="b", regionendpoint="rgw.local:7480", secure=False).endpoint_url,
            "http://rgw.local:7480",
        )
        self.assertEqual(S3Options(**ENDPOINT).endpoint_url, "http://127.0.0.1:9000")

    def test_vendor_host_and_port(self) -> None:
        o = S3Options(bucket="b", host="minio.internal", port="9000", secure=False)
        self.assertEqual(o.endpoint_url, "http://minio.internal:9000")
        self.assertTrue(o.path_style, "a MinIO host is addressed path-style")
        self.assertEqual(S3Options(bucket="b", host="m").endpoint_url, "https://m")

    def test_path_style(self) -> None:
        self.assertTrue(S3Options(**ENDPOINT).path_style)
        self.assertFalse(S3Options(**ENDPOINT, forcepathstyle=False).path_style)
        self.assertFalse(S3Options(bucket="b", region="us-east-1").path_style)
        self.assertTrue(S3Options(bucket="b", region="us-east-1", forcepathstyle=True).path_style)

    def test_key_prefix_as_distributions_s3path(self) -> None:
        for root, prefix in [
            ("", ""),
            ("/", ""),
            ("/registry", "registry/"),
            ("/registry/", "registry/"),
            ("a/b", "a/b/"),
            ("//a//", "a/"),
        ]:
            self.assertEqual(S3Options(**ENDPOINT, rootdirectory=root).key_prefix, prefix, root)
        bucket = Bucket(S3Options(**ENDPOINT, rootdirectory="/reg/"))
        self.assertEqual(bucket.key("/docker/registry/v2/x"), "reg/docker/registry/v2/x")
        self.assertEqual(bucket.dir_prefix("/"), "reg/")
        self.assertEqual(bucket.dir_prefix("/a"), "reg/a/")
        self.assertEqual(bucket.path("reg/a/b"), "/a/b")
        self.assertEqual(Bucket(S3Options(**ENDPOINT)).dir_prefix("/"), "")

    def test_write_args(self) -> None:
        self.assertEqual(
            S3Options(**ENDPOINT).write_args(),
            {"ContentType": "application/octet-stream", "StorageClass": "STANDARD"},
        )
        args = S3Options(
            **ENDPOINT, encrypt=True, storageclass="NONE", objectacl="private"
        ).write_args()
        self.assertEqual(args["ServerSideEncryption"], "AES256")
        self.assertEqual(args["ACL"], "private")
        self.assertNotIn("StorageClass", args)
        kms = S3Options(**ENDPOINT, encrypt=True, keyid="arn:key").encryption_args()
        self.assertEqual(kms, {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:key"})

    def test_secrets_never_shown(self) -> None:
        o = S3Options(**ENDPOINT, accesskey="AKIDSHOWN", secretkey="very-secret")
        self.assertNotIn("very-secret", repr(o))
        self.assertNotIn("AKIDSHOWN", repr(o))
        self.assertEqual(o.describe(), "S3 bucket 'b' at http://127.0.0.1:9000")
        self.assertIn(
            "Amazon S3 in eu-west-1", S3Options(bucket="b", region="eu-west-1").describe()
        )


class SegmentTests(SynchronousTestCase):
    """Segment tables and the ranges of a multipart copy."""

    def test_table_round_trip(self) -> None:
        table = Table((Segment("a1", 8 * MiB), Segment("b2", 3)))
        again = Table.from_bytes(table.to_bytes(), "k")
        self.assertEqual(again, table)
        self.assertEqual(again.size, 8 * MiB + 3)
        self.assertTrue(is_table(table.metadata()))
        self.assertEqual(table.metadata()["paxd-size"], str(8 * MiB + 3))
        self.assertFalse(is_table({}))
        self.assertFalse(is_table(None))
        self.assertEqual(
            table.keys("r/_uploads/u/data"),
            ["r/_uploads/u/.paxd-seg/data/a1", "r/_uploads/u/.paxd-seg/data/b2"],
        )

    def test_damaged_table(self) -> None:
        for data in (b"", b"{}", b'{"segments": [{"name": "../x", "size": 1}]}', b"[1]"):
            with self.assertRaises(StorageError, msg=data) as caught:
                Table.from_bytes(data, "the/key")
            self.assertIn("the/key", str(caught.exception))

    def test_segment_prefix(self) -> None:
        self.assertEqual(segment_prefix("a/b/data"), "a/b/.paxd-seg/data/")
        self.assertEqual(segment_prefix("data"), ".paxd-seg/data/")
        self.assertTrue(is_hidden(".paxd-seg"))
        self.assertFalse(is_hidden("paxd-seg"))

    @given(
        st.integers(min_value=1, max_value=12 * MAX_PART),
        st.integers(min_value=MIN_PART, max_value=MAX_PART),
    )
    def test_copy_ranges(self, size: int, chunk: int) -> None:
        ranges = copy_ranges(size, chunk)
        self.assertEqual(ranges[0][0], 0)
        self.assertEqual(ranges[-1][1], size - 1)
        for (_, last), (first, _) in itertools.pairwise(ranges):
            self.assertEqual(first, last + 1)
        for first, last in ranges:
            length = last - first + 1
            self.assertLessEqual(length, MAX_PART)
            # any range may be followed by another: never under S3's minimum part
            self.assertGreaterEqual(length, min(size, MIN_PART))

    def test_copy_ranges_empty(self) -> None:
        self.assertEqual(copy_ranges(0, MIN_PART), [])


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


class TranslateTests(SynchronousTestCase):
    """What boto3's errors become for the registry."""

    storage = "S3 bucket 'b' at http://h:1"

    def test_missing_key(self) -> None:
        for code in ("NoSuchKey", "404", "NotFound"):
            error = translate(client_error(code, 404), self.storage, "/a/b")
            self.assertIsInstance(error, PathNotFound)
            assert isinstance(error, PathNotFound)
            self.assertEqual(error.path, "/a/b")

    def test_unavailable_names_the_storage(self) -> None:
        for error in (
            client_error("SlowDown", 503),
            client_error("InternalError", 500),
            client_error("NoSuchBucket", 404),
            client_error("AccessDenied", 403),
            EndpointConnectionError(endpoint_url="http://h:1"),
            ConnectTimeoutError(endpoint_url="http://h:1"),
            ConnectionResetError(104, "reset"),
        ):
            translated = translate(error, self.storage, "/a")
            self.assertIsInstance(translated, StorageUnavailable, repr(error))
            self.assertIn("S3 bucket 'b' at http://h:1 is unavailable", str(translated))

    def test_changed(self) -> None:
        translated = translate(client_error("PreconditionFailed", 412), self.storage, "/a")
        self.assertIsInstance(translated, StorageError)
        self.assertNotIsInstance(translated, StorageUnavailable)

    def test_bugs_stay_bugs(self) -> None:
        bug = ParamValidationError(report="bad")
        self.assertIs(translate(bug, self.storage, "/a"), bug)
        other = KeyError("x")
        self.assertIs(translate(other, self.storage, "/a"), other)
