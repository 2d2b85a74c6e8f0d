"""Search spaces and tuning objectives: the schema lives in `recsys.config.search` (config validates it at load);
re-exported here for the tuning code."""

from recsys.config.search import (
                                  SAMPLERS,
                                  Constraint,
                                  ParamSpec,
                                  SelectRule,
                                  check_objectives,
                                  check_search,
                                  objective_metrics,
                                  parse_space,
                                  space_hash,
)

__all__ = ["SAMPLERS", "Constraint", "ParamSpec", "SelectRule", "check_objectives", "check_search",
           "objective_metrics", "parse_space", "space_hash"]
