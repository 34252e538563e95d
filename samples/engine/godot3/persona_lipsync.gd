# Godot 3.x: play a digitalhuman persona line and drive mouth blend shapes from its viseme track.
# Attach to a node with an AudioStreamPlayer child "Voice"; set `persona_dir` to a persona folder
# (face.png, voice_00.wav, persona.json: res://npc/ in a project, or any absolute path) and `mesh`
# to a MeshInstance whose blend shapes are named after the 15 Oculus/Meta visemes
# (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou), optionally with a prefix such as "viseme_".
#
# Weights are co-articulated as digitalhuman's own lip-sync files are (digitalhuman/lipsync/weights.py):
# a segment [a, b] has dominance 1 inside, ramping from 0 over LEAD seconds before a and back to 0
# over LAG seconds after b; a viseme's raw weight is the largest dominance of its segments, and the
# weights are the raw weights divided by their sum: they always sum to 1, and at the middle of a
# segment its own viseme is the loudest.
extends Node

export var persona_dir := "res://npc/"
export var line_index := 0
export var mesh_path: NodePath
export var blend_shape_prefix := ""
export var autoplay := true
# Talking portrait (2D): a Sprite showing the persona's mouth-shape atlas (mouths.png + mouths.json
# beside persona.json); each frame it shows the atlas frame of the loudest viseme. Empty: no atlas.
export var atlas_sprite_path: NodePath

const NAMES := ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]
const SCHEMAS := [1, 2, 3]
const LEAD := 0.08
const LAG := 0.05

var track := []
var weights := {}
var error := ""
var atlas := {}  # mouths.json, once load_atlas() has read it
var frame := -1  # the atlas frame shown (index into atlas["frames"])


func _ready() -> void:
	if autoplay and persona_dir != "":
		error = load_line(persona_dir, line_index)
		if error == "" and not atlas_sprite_path.is_empty():
			error = load_atlas(persona_dir)
		if error == "":
			$Voice.play()
		else:
			push_error(error)


# Loads persona.json and the line's WAV into $Voice; returns "" or what went wrong.
func load_line(folder: String, index: int) -> String:
	var f := File.new()
	var json_path := folder.plus_file("persona.json")
	if f.open(json_path, File.READ) != OK:
		return "cannot open " + json_path
	var parsed := JSON.parse(f.get_as_text())
	f.close()
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
		return "persona.json is not a JSON object"
	var doc: Dictionary = parsed.result
	if not int(doc.get("schema_version", 0)) in SCHEMAS:
		return "persona.json schema_version %s is not supported" % str(doc.get("schema_version"))
	var lines: Array = doc.get("lines", [])
	if index < 0 or index >= lines.size():
		return "persona.json has no line %d" % index
	var line: Dictionary = lines[index]
	# file names in persona.json are plain names inside the folder (digitalhuman validates them)
	var audio: String = line["audio"]
	if audio.find("/") >= 0 or audio.find("\\") >= 0 or audio.find("..") >= 0:
		return "unsafe audio file name " + audio
	var stream = load_wav(folder.plus_file(audio))
	if stream == null:
		return "cannot read " + audio
	$Voice.stream = stream
	track = line["visemes"]
	return ""


# Reads mouths.json and mouths.png of a persona folder into the atlas sprite (if one is set);
# returns "" or what went wrong.
func load_atlas(folder: String) -> String:
	var f := File.new()
	var json_path := folder.plus_file("mouths.json")
	if f.open(json_path, File.READ) != OK:
		return "cannot open " + json_path
	var parsed := JSON.parse(f.get_as_text())
	f.close()
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
		return "mouths.json is not a JSON object"
	if int(parsed.result.get("atlas_version", 0)) != 1:
		return "mouths.json atlas_version %s is not supported" % str(parsed.result.get("atlas_version"))
	atlas = parsed.result
	var image_name: String = atlas.get("image", "mouths.png")
	if image_name.find("/") >= 0 or image_name.find("\\") >= 0 or image_name.find("..") >= 0:
		return "unsafe atlas image name " + image_name
	var image := Image.new()
	if image.load(folder.plus_file(image_name)) != OK:
		return "cannot read " + image_name
	var sprite = get_node_or_null(atlas_sprite_path)
	if sprite != null:
		var texture := ImageTexture.new()
		texture.create_from_image(image, Texture.FLAG_FILTER)
		sprite.texture = texture
		sprite.region_enabled = true
	show_frame(int(atlas.get("rest_frame", 0)))
	return ""


# The atlas frame for time t of the line: the frame of the loudest co-articulated viseme.
func frame_at(t: float) -> int:
	var w := weights_at(t)
	var best: String = NAMES[0]
	for name in NAMES:
		if w[name] > w[best]:
			best = name
	return int(atlas["viseme_to_frame"].get(best, atlas.get("rest_frame", 0)))


func show_frame(index: int) -> void:
	frame = index
	var sprite = get_node_or_null(atlas_sprite_path) if not atlas_sprite_path.is_empty() else null
	if sprite == null:
		return
	var r: Dictionary = atlas["frames"][index]
	sprite.region_rect = Rect2(float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]))


# An imported resource when the WAV is inside the project, else the file itself (mono/stereo PCM16).
func load_wav(path: String) -> AudioStream:
	if path.begins_with("res://") and ResourceLoader.exists(path):
		return load(path) as AudioStream
	var f := File.new()
	if f.open(path, File.READ) != OK:
		return null
	var bytes := f.get_buffer(f.get_len())
	f.close()
	if bytes.size() < 44 or bytes.subarray(0, 3).get_string_from_ascii() != "RIFF":
		return null
	var pos := 12
	var channels := 0
	var rate := 0
	var bits := 0
	var data := PoolByteArray()
	while pos + 8 <= bytes.size():
		var id := bytes.subarray(pos, pos + 3).get_string_from_ascii()
		var size := bytes[pos + 4] | (bytes[pos + 5] << 8) | (bytes[pos + 6] << 16) | (bytes[pos + 7] << 24)
		var body := pos + 8
		if id == "fmt ":
			channels = bytes[body + 2] | (bytes[body + 3] << 8)
			rate = bytes[body + 4] | (bytes[body + 5] << 8) | (bytes[body + 6] << 16) | (bytes[body + 7] << 24)
			bits = bytes[body + 14] | (bytes[body + 15] << 8)
		elif id == "data" and size > 0:
			data = bytes.subarray(body, min(body + size, bytes.size()) - 1)
		pos = body + size + (size % 2)
	if bits != 16 or channels < 1 or channels > 2 or rate <= 0 or data.size() == 0:
		return null
	var sample := AudioStreamSample.new()
	sample.format = AudioStreamSample.FORMAT_16_BITS
	sample.mix_rate = rate
	sample.stereo = channels == 2
	sample.data = data
	return sample


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
		d = clamp(d, 0.0, 1.0)
		if d > raw[v["viseme"]]:
			raw[v["viseme"]] = d
	var total := 0.0
	for name in NAMES:
		total += raw[name]
	if total <= 0.0:
		raw["sil"] = 1.0
		return raw
	for name in NAMES:
		raw[name] = raw[name] / total
	return raw


func _process(_delta: float) -> void:
	if track.empty() or not $Voice.playing:
		return
	# the audio clock, not frame time, so the mouth stays on the sound
	var t: float = $Voice.get_playback_position() + AudioServer.get_time_since_last_mix()
	weights = weights_at(t)
	if not atlas.empty():
		var f := frame_at(t)
		if f != frame:
			show_frame(f)
	if mesh_path.is_empty():
		return
	var mesh = get_node_or_null(mesh_path)
	if mesh == null:
		return
	for name in NAMES:
		mesh.set("blend_shapes/" + blend_shape_prefix + name, weights[name])
