package mc.residency_test

import data.mc.residency

req(allowed, region, tasks) := {
	"tenant": {"id": "acme", "allowed_regions": allowed, "blocked": {"locations": [], "regions": []}},
	"manifest": {"region": region, "tasks": tasks},
	"appliance": {"locations": {"eu-bucket": "eu-west", "us-bucket": "us-east"}, "node_region": null},
}

blocked(locations, regions, region, tasks) := object.union(req(["eu-west"], region, tasks), {"tenant": {"id": "acme", "allowed_regions": ["eu-west"], "blocked": {"locations": locations, "regions": regions}}})

on_node(node, region) := object.union(req([], region, []), {"appliance": {"locations": {}, "node_region": node}})

codes(i) := {r.code | some r in residency.deny with input as i}

test_runs_in_allowed_regions if {
	residency.allow with input as req(["eu-west"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "eu-bucket"}])
}

test_no_allowed_regions_means_every_region if {
	residency.allow with input as req([], "us-east", [])
}

test_regions_outside_the_tenant_are_refused if {
	codes(req(["eu-west"], "us-east", [])) == {"region_not_allowed"}
}

test_artifacts_stay_in_the_workflow_region if {
	codes(req(["eu-west", "us-east"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "us-bucket"}])) == {"location_outside_region"}
}

test_artifacts_in_forbidden_regions if {
	codes(req(["eu-west"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "us-bucket"}])) == {"location_outside_region", "location_region_not_allowed"}
}

test_runs_on_a_node_of_their_region if {
	residency.allow with input as on_node("eu-west", "eu-west")
}

test_runs_whose_data_must_stay_elsewhere_are_refused_by_the_node if {
	codes(on_node("us-east", "eu-west")) == {"node_outside_region"}
}

test_open_violations_block_their_location if {
	codes(blocked(["eu-bucket"], [], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "eu-bucket"}])) == {"residency_violation_open"}
}

test_open_violations_leave_other_locations_alone if {
	residency.allow with input as blocked(["other-bucket"], [], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "eu-bucket"}])
}

test_locations_chosen_at_run_time_are_blocked_while_violations_are_open if {
	codes(blocked(["other-bucket"], [], "eu-west", [{"id": "a", "uses": "builtin/artifact"}])) == {"residency_violation_open"}
}

test_open_violations_of_a_region_block_runs_there if {
	codes(blocked([], ["eu-west"], "eu-west", [])) == {"residency_violation_open"}
}
