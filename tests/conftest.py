import os

# Tests never touch the network: the hub code paths are exercised on fixtures in the hub's layout.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest-xdist workers inherit COLUMNS=80, which rich would freeze into the CLI's console at import; without
# it the console reads COLUMNS at each print, so a test can widen a table with CliRunner(env=...)
os.environ.pop("COLUMNS", None)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # a worker per core: one torch thread each, or two workers on two cores fight over four threads
    os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def isolated_datasets_cache(tmp_path_factory):
    """Arrow caches of the fixture repos go to a temporary directory, and no real hub dataset is cached."""
    import datasets
    from huggingface_hub import constants

    from xstilts.tasks import hub

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_datasets"))
        mp.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf_hub")))
        mp.delenv(hub.MIRROR_ENV, raising=False)
        yield
