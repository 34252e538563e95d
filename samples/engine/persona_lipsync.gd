# Godot 4: play a digitalhuman persona line and drive mouth blend shapes from its viseme track.
# Put a persona folder (face.png, voice_00.wav, persona.json) under res://npc/, attach this script to a
# node with an AudioStreamPlayer child "Voice" and set `mesh` to a MeshInstance3D whose blend shapes
# are named after the 15 Oculus/Meta visemes (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou).
# Godot 3: use godot3/persona_lipsync.gd (run headless in CI).
#
# Weights are co-articulated as digitalhuman's own lip-sync files are (digitalhuman/lipsync/weights.py):
# a segment [a, b] has dominance 1 inside, ramping from 0 over LEAD seconds before a and back to 0
# over LAG seconds after b; a viseme's raw weight is the largest dominance of its segments, and the
# weights are the raw weights divided by their sum: they always sum to 1, and at the middle of a
# segment its own viseme is the loudest.
extends Node

@export var persona_dir := "res://npc/"
@export var line_index := 0
@export var mesh: MeshInstance3D

const NAMES := ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]
const SCHEMAS := [1, 2, 3]
const LEAD := 0.08
const LAG := 0.05
var track: Array = []


func _ready() -> void:
	var doc = JSON.parse_string(FileAccess.get_file_as_string(persona_dir.path_join("persona.json")))
	if doc == null or not int(doc["schema_version"]) in SCHEMAS:
		push_error("persona.json missing or of an unsupported schema_version")
		return
	var line: Dictionary = doc["lines"][line_index]
	# file names in persona.json are plain names inside the folder (validated by digitalhuman)
	$Voice.stream = load(persona_dir.path_join(line["audio"]))
	track = line["visemes"]
	$Voice.play()


func _process(_delta: float) -> void:
	if track.is_empty() or mesh == null or not $Voice.playing:
		return
	# the audio clock, not frame time, so the mouth stays on the sound
	var t: float = $Voice.get_playback_position() + AudioServer.get_time_since_last_mix()
	var w := weights_at(t)
	for name in NAMES:
		var idx := mesh.find_blend_shape_by_name(name)
		if idx >= 0:
			mesh.set_blend_shape_value(idx, w[name])


# Co-articulated weights at time t (seconds of the line): {viseme name: weight}, summing to 1.
func weights_at(t: float) -> Dictionary:
	var raw := {}
	for name in NAMES:
		raw[name] = 0.0
	for v in track:
		var a := float(v["t_start"])
		var b := float(v["t_end"])
		if t < a - LEAD or t > b + LAG:
			continue
		var d := 1.0
		if t < a:
			d = 1.0 - (a - t) / LEAD
		elif t > b:
			d = 1.0 - (t - b) / LAG
		raw[v["viseme"]] = max(raw[v["viseme"]], clampf(d, 0.0, 1.0))
	var total := 0.0
	for name in NAMES:
		total += raw[name]
	if total <= 0.0:
		raw["sil"] = 1.0
		return raw
	for name in NAMES:
		raw[name] = raw[name] / total
	return raw
