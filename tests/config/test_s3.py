"""``storage.s3``: distribution's keys, the vendor's host/port, errors naming keys, the overlay."""

from __future__ import annotations

import attrs

from paxd.config import load_default_config
from paxd.config.s3 import S3Config
from paxd.config.schema import fields_of
from paxd.storage.s3.options import MiB, S3Options
from tests.config.support import SOURCE, ErrorAssertions, parse

BASE = "version: 0.1\nstorage:\n  s3:\n    bucket: packs\n    region: eu-west-1\n"


def s3(extra: str = "", base: str = BASE) -> S3Options:
    """The driver options of BASE plus *extra* lines (indented under ``s3``)."""
    lines = "".join(f"    {line}\n" for line in extra.splitlines())
    config = parse(base + lines)
    assert config.storage.s3 is not None
    return config.storage.s3.options()


class S3ConfigTests(ErrorAssertions):
    def test_every_driver_option_is_a_key(self) -> None:
        """The section and the driver's options are the same keys with the same defaults."""
        keys = {f.key for f in fields_of(S3Config) if f.spec.unimplemented is None}
        self.assertEqual(keys, set(attrs.fields_dict(S3Options)))
        self.assertEqual(
            S3Config(bucket="b", region="r").options(), S3Options(bucket="b", region="r")
        )

    def test_distribution_keys(self) -> None:
        options = s3(
            "regionendpoint: https://s3.internal:8443\n"
            "forcepathstyle: true\n"
            "accesskey: AKIA\n"
            "secretkey: sekrit\n"
            "rootdirectory: /registry\n"
            "encrypt: true\n"
            "keyid: kms-key\n"
            "skipverify: true\n"
            "v4auth: true\n"
            "chunksize: 16777216\n"
            "multipartcopychunksize: 67108864\n"
            "multipartcopymaxconcurrency: 8\n"
            "multipartcopythresholdsize: 5368709120\n"
            "storageclass: reduced_redundancy\n"
            "objectacl: bucket-owner-full-control\n"
            "useragent: paxd-test\n"
        )
        self.assertEqual(options.endpoint_url, "https://s3.internal:8443")
        self.assertTrue(options.path_style)
        self.assertEqual((options.accesskey, options.secretkey), ("AKIA", "sekrit"))
        self.assertEqual(options.key_prefix, "registry/")
        self.assertEqual(
            options.encryption_args(),
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "kms-key"},
        )
        self.assertTrue(options.skipverify)
        self.assertEqual(options.chunksize, 16 * MiB)
        self.assertEqual(options.multipartcopychunksize, 64 * MiB)
        self.assertEqual(options.multipartcopymaxconcurrency, 8)
        self.assertEqual(options.multipartcopythresholdsize, 5 * 1024 * MiB)
        self.assertEqual(options.storageclass, "REDUCED_REDUNDANCY")
        self.assertEqual(options.objectacl, "bucket-owner-full-control")
        self.assertEqual(options.useragent, "paxd-test")

    def test_values_as_distribution_reads_them(self) -> None:
        """Quoted booleans and numbers are accepted, as Go's driver parameters are."""
        quoted = 'secure: "false"\nencrypt: "true"\nchunksize: "5242880"\nport: "9000"\n'
        options = s3(
            quoted + "host: minio.local\n", base=BASE.replace("    region: eu-west-1\n", "")
        )
        self.assertFalse(options.secure)
        self.assertTrue(options.encrypt)
        self.assertEqual(options.chunksize, 5 * MiB)
        self.assertEqual(options.endpoint_url, "http://minio.local:9000")
        self.assertEqual(options.region, None)

    def test_vendor_host_and_port(self) -> None:
        """The vendor's MinIO form: host and port, https unless secure is false."""
        base = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n"
        self.assertEqual(s3("host: minio\nport: 9000\n", base).endpoint_url, "https://minio:9000")
        options = s3("host: minio\nport: 9000\nsecure: false\n", base)
        self.assertEqual(options.endpoint_url, "http://minio:9000")
        self.assertTrue(options.path_style)
        self.assertEqual(s3("host: minio\n", base).endpoint_url, "https://minio")

    def test_defaults(self) -> None:
        options = s3()
        self.assertIsNone(options.endpoint_url)
        self.assertFalse(options.path_style)
        self.assertEqual(options.region, "eu-west-1")
        self.assertIsNone(options.accesskey)  # boto3's credential chain
        self.assertEqual(options.key_prefix, "")
        self.assertEqual(options.chunksize, 10 * MiB)
        self.assertEqual(options.storageclass, "STANDARD")
        self.assertEqual((options.connecttimeout, options.readtimeout), (3.0, 10.0))
        self.assertEqual((options.maxattempts, options.maxconnections), (2, 64))

    def test_paxd_timeouts(self) -> None:
        """Durations, or plain numbers of seconds (never Go's nanoseconds: 3 would be 3 ns)."""
        options = s3("connecttimeout: 500ms\nreadtimeout: 2\nmaxattempts: 3\nmaxconnections: 8\n")
        self.assertEqual((options.connecttimeout, options.readtimeout), (0.5, 2.0))
        self.assertEqual((options.maxattempts, options.maxconnections), (3, 8))
        self.assertEqual(s3("readtimeout: 1.5\n").readtimeout, 1.5)
        self.assertEqual(s3("readtimeout: 1m\n").readtimeout, 60.0)

    def test_errors_name_the_key(self) -> None:
        without_region = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n"
        cases = [
            ("version: 0.1\nstorage: {s3: }", "bucket", "missing; set it, e.g. bucket: registry"),
            (without_region, "region", "region is required unless regionendpoint"),
            (BASE + "    chunksize: 1000\n", "chunksize", "between 5242880 and 5368709120"),
            (BASE + "    chunksize: 5MB\n", "chunksize", "expected an integer, not '5MB'"),
            (BASE + "    chunksize: [1]\n", "chunksize", "expected a single value, got a list"),
            (BASE + "    secure: maybe\n", "secure", "expected a boolean (true or false)"),
            (BASE + "    accesskey: a\n", "secretkey", "accesskey and secretkey go together"),
            (BASE + "    secretkey: s\n", "accesskey", "give both or neither"),
            (BASE + "    host: h\n    regionendpoint: http://x\n", "host", "not both"),
            (BASE + "    port: 9000\n", "port", "port needs host"),
            (BASE + "    storageclass: gold\n", "storageclass", "must be one of NONE, STANDARD"),
            (BASE + "    objectacl: everyone\n", "objectacl", "must be one of private"),
            (BASE + "    v4auth: false\n", "v4auth", "Amazon S3 needs v4auth: true"),
            (BASE + "    readtimeout: soon\n", "readtimeout", "a duration such as 3s"),
            (BASE + "    readtimeout: 0s\n", "readtimeout", "must be positive"),
            (BASE + "    maxattempts: 0\n", "maxattempts", "between 1 and 10"),
            (BASE + "    multipartcopymaxconcurrency: 0\n", "multipartcopymaxconcurrency", "1"),
        ]
        for text, key, fragment in cases:
            self.assertConfigError(text, f"storage.s3.{key}", fragment)

    def test_signature_v2_allowed_elsewhere(self) -> None:
        base = (
            "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    regionendpoint: http://ceph:7480\n"
        )
        self.assertFalse(s3("v4auth: false\n", base).v4auth)

    def test_ignored_keys_warn_once(self) -> None:
        text = (
            BASE
            + "    usedualstack: true\n    accelerate: false\n    loglevel: debug\n"
            + "    usefipsendpoint: off\n    regionendpiont: x\n"
        )
        self.assertEqual(
            parse(text).warnings,
            (
                "storage.s3.usedualstack: not used by paxd (give regionendpoint instead); ignored",
                "storage.s3.loglevel: not used by paxd (paxd logs S3 failures itself); ignored",
                "storage.s3.regionendpiont: unknown key; ignored (did you mean 'regionendpoint'?)",
            ),
        )
        # YAML's off is false: distribution's loglevel: off switches nothing on
        self.assertEqual(parse(BASE + "    loglevel: off\n").warnings, ())

    def test_redirects_follow_distribution(self) -> None:
        """On unless storage.redirect.disable (distribution's default)."""
        self.assertTrue(parse(BASE).storage.redirects)
        config = parse(BASE + "  redirect:\n    disable: true\n")
        self.assertFalse(config.storage.redirects)
        self.assertTrue(config.storage.redirect_disabled)

    def test_environment_overlay(self) -> None:
        """The vendor image's default configuration turned to S3 by variables alone."""
        config = load_default_config(
            {
                "REGISTRY_STORAGE": "s3",
                "REGISTRY_STORAGE_S3_BUCKET": "packs",
                "REGISTRY_STORAGE_S3_HOST": "minio.internal",
                "REGISTRY_STORAGE_S3_PORT": "9000",
                "REGISTRY_STORAGE_S3_SECURE": "false",
                "REGISTRY_STORAGE_S3_ACCESSKEY": "minio",
                "REGISTRY_STORAGE_S3_SECRETKEY": "minio123",
                "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/spectro",
                "REGISTRY_STORAGE_S3_MULTIPARTCOPYTHRESHOLDSIZE": "5368709120",
                "REGISTRY_STORAGE_REDIRECT_DISABLE": "true",
            }
        )
        self.assertEqual(config.storage.driver, "s3")
        assert config.storage.s3 is not None
        options = config.storage.s3.options()
        self.assertEqual(options.endpoint_url, "http://minio.internal:9000")
        self.assertEqual((options.accesskey, options.secretkey), ("minio", "minio123"))
        self.assertEqual(options.key_prefix, "spectro/")
        self.assertEqual(options.multipartcopythresholdsize, 5 * 1024 * MiB)
        self.assertFalse(config.storage.redirects)
        self.assertEqual(config.warnings, ())

    def test_environment_errors_name_the_variable(self) -> None:
        text = "version: 0.1\nstorage: {s3: {bucket: b, region: r}}\n"
        error = self.assertConfigError(
            text,
            "storage.s3.chunksize",
            "expected an integer, not 'big'",
            environ={"REGISTRY_STORAGE_S3_CHUNKSIZE": "big"},
        )
        self.assertIn("(the environment sets REGISTRY_STORAGE_S3_CHUNKSIZE)", str(error))
        self.assertTrue(str(error).startswith(f"{SOURCE}: "))
        # a file on filesystem storage plus S3 variables: two drivers, naming the variable
        self.assertConfigError(
            "version: 0.1\nstorage: {filesystem: {rootdirectory: /d}}\n",
            "storage",
            "two storage drivers configured (filesystem, s3)",
            "REGISTRY_STORAGE_S3_BUCKET",
            environ={"REGISTRY_STORAGE_S3_BUCKET": "b"},
        )
