"""Side-by-side benchmarks of paxd and Docker distribution 2.8 (Debian's ``docker-registry``).

``python -m bench [--smoke|--quick|--full]`` from the repository root starts both
servers on loopback with equivalent configuration, loads identical data into
both, runs each workload against each server (alternating, several rounds) and
prints medians, spreads, the ratio paxd/distribution and each server's peak RSS.

Modules:

* :mod:`bench.profiles`: sizes, rounds and durations of ``--smoke``, ``--quick``, ``--full``;
* :mod:`bench.data`: payloads, distribution's on-disk layout written directly,
  the htpasswd file and a self-signed certificate;
* :mod:`bench.servers`: configuration, start, readiness, stop and memory sampling of a server;
* :mod:`bench.client`: the small HTTP client (pushes, catalog walks) and the
  ``curl``/``wrk`` wrappers;
* :mod:`bench.workloads`: the seven workloads of the issue;
* :mod:`bench.s3`: the S3 workloads (``--only s3``, or ``--full``): both servers
  on Ceph's RADOS Gateway, which the run starts (``tests/support/rgw.py``);
* :mod:`bench.report`: statistics, the text and reStructuredText tables, the machine description;
* :mod:`bench.__main__`: the command line and the round-robin runner;
* :mod:`bench.spy`: ``python -m bench.spy FILE``, the top frames of a ``--py-spy`` profile.
"""
