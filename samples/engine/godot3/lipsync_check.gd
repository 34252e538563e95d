# CI check of persona_lipsync.gd (tests/test_engines.py): loads the persona line given on the
# command line, plays its WAV, samples the reader's weights every frame while it plays and at the
# middle of every viseme segment, and prints one line "DH_RESULT <json>" before quitting.
#   godot3-server --path samples/engine/godot3 -- --persona=/abs/npc --line=0
extends Node

var reader
var frames := []
var started := 0
var result := {}


func _arg(name: String, default: String) -> String:
	for a in OS.get_cmdline_args():
		if a.begins_with("--" + name + "="):
			return a.substr(name.length() + 3)
	return default


func _ready() -> void:
	reader = $PersonaLipSync
	reader.autoplay = false
	var err: String = reader.load_line(_arg("persona", ""), int(_arg("line", "0")))
	result["error"] = err
	if err != "":
		_finish()
		return
	result["stream_length"] = reader.get_node("Voice").stream.get_length()
	var mids := []
	for v in reader.track:
		var t := (float(v["t_start"]) + float(v["t_end"])) / 2.0
		mids.append({"t": t, "viseme": v["viseme"], "w": reader.weights_at(t)})
	result["midpoints"] = mids
	if _arg("atlas", "0") == "1":  # the atlas mode: the frame shown at every viseme midpoint
		var aerr: String = reader.load_atlas(_arg("persona", ""))
		result["atlas_error"] = aerr
		var shown := []
		if aerr == "":
			for v in reader.track:
				var t := (float(v["t_start"]) + float(v["t_end"])) / 2.0
				reader.show_frame(reader.frame_at(t))
				shown.append({"t": t, "viseme": v["viseme"], "frame": reader.frame,
							  "region_x": reader.get_node(reader.atlas_sprite_path).region_rect.position.x})
		result["atlas_midpoints"] = shown
	reader.get_node("Voice").play()
	started = OS.get_ticks_msec()


func _process(_delta: float) -> void:
	if result.has("done") or result["error"] != "":
		return
	var voice: AudioStreamPlayer = reader.get_node("Voice")
	if voice.playing:
		reader._process(0.0)
		frames.append({"t": voice.get_playback_position(), "w": reader.weights})
	elif frames.size() > 0 or OS.get_ticks_msec() - started > 60000:
		_finish()


func _finish() -> void:
	result["done"] = true
	result["frames"] = frames
	print("DH_RESULT " + JSON.print(result))
	get_tree().quit(0 if result["error"] == "" else 2)
