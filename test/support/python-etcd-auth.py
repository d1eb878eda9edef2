"""Runs python-etcd's own auth tests against a cluster the caller started (test/python-etcd-auth.test.ts).

The tests and the client are upstream's, unmodified (test/fixtures/python-etcd, commit 7f3dd65). Upstream's test
base, etcd.tests.integration.test_simple.EtcdIntegrationTest, spawns etcd itself on port 6001 in setUpClass and
kills it in tearDownClass; this adapter stands in for that module instead, so the same test bodies run against
whatever single-member cluster the caller started fresh for the test class (etcd 3.4 or Berth).

The test bodies name addresses by port: etcd.Client(port=6001) is the cluster, etcd.Client(port=9999) an address
where nothing answers. The adapter's Client maps 6001 to the caller's cluster and 9999 to a loopback port it holds
bound without listening, so that one refuses connections whatever else runs on the machine.

Usage (Debian's /usr/bin/python3, with python3-urllib3 and python3-dnspython):
  python-etcd-auth.py --list         the test classes, one a line
  python-etcd-auth.py PORT CLASS     runs CLASS against http://127.0.0.1:PORT, printing JSON lines on stdout:
                                     {"exchange": {"request", "body", "status", "answer"}} for each HTTP exchange,
                                     {"test": "CLASS.method", "outcome": "ok"|"fail"|"error", "detail": "..."}
                                     after each test; unittest's own report goes to stderr.
The client sends the paths of a role's permissions in the order of a Python set: run with PYTHONHASHSEED fixed
for the exchanges of two runs to be comparable.
"""

import json
import os
import socket
import sys
import types
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the repository's fixtures
VENDORED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "python-etcd")
sys.path.insert(0, VENDORED)

import etcd  # noqa: E402  (the vendored package, found through the path above)

CLUSTER_SIZE = 1  # what the caller starts; upstream's auth tests ask for cl_size = 1


class EtcdIntegrationTest(unittest.TestCase):
    """Upstream's test base, with the cluster started and stopped by the caller instead of by setUpClass."""

    cl_size = 3

    @classmethod
    def setUpClass(cls):
        if cls.cl_size != CLUSTER_SIZE:
            raise RuntimeError("%s wants a %d-member cluster; the caller starts %d" % (cls.__name__, cls.cl_size, CLUSTER_SIZE))
        cls.client = etcd.Client(port=6001)

    @classmethod
    def tearDownClass(cls):
        pass


def install_test_base():
    """Makes `from etcd.tests.integration.test_simple import EtcdIntegrationTest` find the class above."""
    tests = types.ModuleType("etcd.tests")
    tests.__path__ = [os.path.join(VENDORED, "etcd", "tests")]  # test_auth.py comes from there
    integration = types.ModuleType("etcd.tests.integration")
    integration.__path__ = []
    simple = types.ModuleType("etcd.tests.integration.test_simple")
    simple.EtcdIntegrationTest = EtcdIntegrationTest
    sys.modules.update({m.__name__: m for m in (tests, integration, simple)})
    etcd.tests = tests


def map_ports(cluster_port):
    """etcd.Client(port=6001) reaches the caller's cluster, etcd.Client(port=9999) a port that refuses."""
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    ports = {6001: cluster_port, 9999: refusing.getsockname()[1]}
    original = etcd.Client.__init__

    def init(self, *args, **kwargs):
        if "port" in kwargs:
            kwargs["port"] = ports.get(kwargs["port"], kwargs["port"])
        original(self, *args, **kwargs)

    etcd.Client.__init__ = init
    return refusing


def trace_exchanges():
    """Prints every HTTP exchange the client makes as a JSON line: request, its body, status and answer."""
    import urllib3

    original = urllib3.PoolManager.urlopen

    def urlopen(self, method, url, *args, **kwargs):
        response = original(self, method, url, *args, **kwargs)
        path = "/" + url.split("/", 3)[3]  # without scheme and host:port, which differ between the clusters
        exchange = {
            "request": "%s %s" % (method, path),
            "body": kwargs.get("body"),
            "status": response.status,
            "answer": response.data.decode("utf-8", "replace"),
        }
        print(json.dumps({"exchange": exchange}), flush=True)
        return response

    urllib3.PoolManager.urlopen = urlopen


class JsonLines(unittest.TextTestResult):
    """unittest's report on stderr, plus one JSON line per test on stdout."""

    def emit(self, test, outcome, err=None):
        detail = self._exc_info_to_string(err, test) if err else ""
        name = "%s.%s" % (type(test).__name__, test._testMethodName)
        print(json.dumps({"test": name, "outcome": outcome, "detail": detail}), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.emit(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.emit(test, "fail", err)

    def addError(self, test, err):
        super().addError(test, err)
        # An error in setUpClass arrives as a _ErrorHolder, not a test case.
        if isinstance(test, unittest.TestCase):
            self.emit(test, "error", err)
        else:
            print(json.dumps({"test": str(test), "outcome": "error", "detail": self._exc_info_to_string(err, self)}), flush=True)


def main(argv):
    install_test_base()
    from etcd.tests import test_auth

    classes = {
        name: obj
        for name, obj in vars(test_auth).items()
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj.__module__ == test_auth.__name__
    }
    if argv[1:] == ["--list"]:
        # Only classes with tests of their own (TestEtcdAuthBase holds the shared setUp and tearDown).
        for name, cls in sorted(classes.items()):
            if unittest.defaultTestLoader.getTestCaseNames(cls):
                print(name)
        return 0
    port, class_name = int(argv[1]), argv[2]
    refusing = map_ports(port)
    trace_exchanges()
    try:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(classes[class_name])
        runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=JsonLines)
        return 0 if runner.run(suite).wasSuccessful() else 1
    finally:
        refusing.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
