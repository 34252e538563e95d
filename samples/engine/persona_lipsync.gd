# Godot 4: play a digitalhuman persona line and drive mouth blend shapes from its viseme track.
# Put a persona folder (face.png, voice_00.wav, persona.json) under res://npc/, attach this script to a
# node with an AudioStreamPlayer child "Voice" and set `mesh` to a MeshInstance3D whose blend shapes
# are named after the 15 Oculus/Meta visemes (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou).
extends Node

@export var persona_dir := "res://npc/"
@export var line_index := 0
@export var mesh: MeshInstance3D
@export var blend_time := 0.06

const NAMES := ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]
var track: Array = []

func _ready() -> void:
	var doc = JSON.parse_string(FileAccess.get_file_as_string(persona_dir.path_join("persona.json")))
	if doc == null or int(doc["schema_version"]) != 1:
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
	var t: float = $Voice.get_playback_position()
	for name in NAMES:
		var idx := mesh.find_blend_shape_by_name(name)
		if idx >= 0:
			mesh.set_blend_shape_value(idx, _weight(name, t))

func _weight(name: String, t: float) -> float:
	var w := 0.0
	for v in track:
		if v["viseme"] != name:
			continue
		var a := clampf((t - float(v["t_start"]) + blend_time) / blend_time, 0.0, 1.0)
		var b := clampf((float(v["t_end"]) + blend_time - t) / blend_time, 0.0, 1.0)
		w = max(w, min(a, b))
	return w
