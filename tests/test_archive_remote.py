"""Live queries of the archive source (Gaia archive, VizieR, CMD).

Deselected by default (``-m 'not remote_data'`` in pyproject); run them with
network access as ``python -m pytest -m remote_data tests/test_archive_remote.py``.
"""

from __future__ import annotations

import pytest

from ocmembers import load_config
from ocmembers.sources import vizier
from ocmembers.sources.archive import ArchiveSource
from ocmembers.method.columns import CLUSTER_COLUMNS, GAIA_COLUMNS, cluster_row

pytestmark = pytest.mark.remote_data


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    cfg = load_config(output_dir=str(tmp_path_factory.mktemp("data")))
    return ArchiveSource(cfg)


@pytest.fixture(scope="module")
def clusters(source):
    return source.cluster_table()


def test_vizier_cg20_table1(clusters):
    assert list(clusters.columns) == list(CLUSTER_COLUMNS)
    assert len(clusters) == 2017
    m67 = cluster_row(clusters, "NGC 2682")
    assert m67["pmra"] == pytest.approx(-10.986) and m67["dist_pc"] == pytest.approx(889)


def test_vizier_members_of_one_cluster(source):
    payload = vizier.build_vizier_query(vizier.CG20_MEMBERS, vizier.CG20_MEMBER_COLUMNS,
                                        constraints={"Cluster": "NGC_2682"})
    members = vizier.parse_members(vizier.fetch_vizier(payload, cfg=source.cfg),
                                   id_column="GaiaDR2")
    assert set(members["cluster"]) == {"NGC_2682"} and len(members) > 500


def test_gaia_cone_ngc_2682(source, clusters):
    cone = source.cone(cluster_row(clusters, "NGC_2682"))
    assert list(cone.columns) == list(GAIA_COLUMNS)
    # the 10-sigma cone of M67 holds thousands of sources, nearly all its members
    assert len(cone) > 2000
