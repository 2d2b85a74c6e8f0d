"""Every audience model passes the shipped audience contract."""

from recsys.testing.audience_contract import AudienceContract


class TestRandomAudience(AudienceContract):
    model_name = "random"
    params = {"random_state": 3}
    learns_structure = False


class TestActivityAudience(AudienceContract):
    model_name = "activity"
    learns_structure = False  # the same ranking for every product


class TestActivityAffinityAudience(AudienceContract):
    model_name = "activity_affinity"  # the checkerboard's blocks are its item categories


class TestALSAudience(AudienceContract):
    model_name = "als"
    params = {"factors": 8, "iterations": 15, "num_threads": 1, "random_state": 0}
