package mc.admission_test

import data.mc.admission

base := {
	"actor": {"subject": "token:t", "tenant": "acme", "roles": ["operator"]},
	"tenant": {"id": "acme", "allowed_regions": ["eu-west"]},
	"execution": {"id": "ex_1", "canary": false},
	"manifest": {"name": "n", "version": "1.0.0", "region": "eu-west", "digest": "sha256:00", "tasks": []},
	"appliance": {"exec_enabled": false, "http_allowed": [{"host": "127.0.0.1", "port": 8080}, {"host": "api.internal", "port": null}], "locations": {"eu-bucket": "eu-west"}},
}

with_tasks(tasks) := object.union(base, {"manifest": object.union(base.manifest, {"tasks": tasks})})

codes(i) := {r.code | some r in admission.deny with input as i}

test_plain_runs_are_admitted if {
	admission.allow with input as with_tasks([{"id": "a", "uses": "builtin/echo"}])
}

test_exec_is_refused_when_disabled if {
	codes(with_tasks([{"id": "a", "uses": "builtin/exec"}])) == {"action_disabled"}
}

test_exec_is_admitted_when_enabled if {
	i := object.union(with_tasks([{"id": "a", "uses": "builtin/exec"}]), {"appliance": object.union(base.appliance, {"exec_enabled": true})})
	admission.allow with input as i
}

test_http_to_allowed_hosts if {
	admission.allow with input as with_tasks([
		{"id": "a", "uses": "builtin/http", "url_host": "127.0.0.1", "url_port": 8080},
		{"id": "b", "uses": "builtin/http", "url_host": "api.internal", "url_port": 443},
	])
}

test_http_elsewhere_is_refused if {
	codes(with_tasks([{"id": "a", "uses": "builtin/http", "url_host": "127.0.0.1", "url_port": 9090}])) == {"host_not_allowed"}
}

test_unknown_locations_are_refused if {
	codes(with_tasks([{"id": "a", "uses": "builtin/artifact", "location": "nowhere"}])) == {"unknown_location"}
}

test_canary_needs_an_operator if {
	i := object.union(with_tasks([]), {
		"actor": {"subject": "token:v", "tenant": "acme", "roles": ["viewer"]},
		"execution": {"id": "ex_1", "canary": true},
	})
	codes(i) == {"canary_not_allowed"}
}
