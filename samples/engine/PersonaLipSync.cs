// Unity: drive a SkinnedMeshRenderer's viseme blend shapes from a digitalhuman persona.json line.
// Attach to the head object, set `personaJson` (TextAsset of persona.json), `voice` (AudioSource with
// the line's voice_NN.wav), `face` (the mesh) and name its blend shapes after the 15 Oculus/Meta visemes
// (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou), e.g. "viseme_aa". Needs Unity's JsonUtility only.
//
// Weights are co-articulated as digitalhuman's own lip-sync files are (digitalhuman/lipsync/weights.py):
// a segment [a, b] has dominance 1 inside, ramping from 0 over Lead seconds before a and back to 0 over
// Lag seconds after b; a viseme's raw weight is the largest dominance of its segments, and the weights
// are the raw weights divided by their sum: they always sum to 1 (100 in blend-shape units), and at the
// middle of a segment its own viseme is the loudest.
using System;
using UnityEngine;

[Serializable] public class Viseme { public float t_start; public float t_end; public string viseme; }
[Serializable] public class Word { public string word; public float t_start; public float t_end; }
[Serializable] public class Line { public string text; public string audio; public int sample_rate; public float duration_s; public Viseme[] visemes; public Word[] words; }
[Serializable] public class Traits { public string gender; public float female; public float age; }
[Serializable] public class PersonaDoc { public int schema_version; public ulong seed; public Traits traits; public string face; public Line[] lines; }

public class PersonaLipSync : MonoBehaviour
{
    public TextAsset personaJson;
    public int lineIndex = 0;
    public AudioSource voice;
    public SkinnedMeshRenderer face;
    public string blendShapePrefix = "viseme_";
    public const float Lead = 0.08f;  // seconds a shape starts forming before its segment
    public const float Lag = 0.05f;   // seconds it takes to let go after it

    PersonaDoc doc;
    int[] shapeIndex;
    public static readonly string[] VisemeNames = { "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou" };

    void Start()
    {
        doc = JsonUtility.FromJson<PersonaDoc>(personaJson.text);
        if (doc.schema_version < 1 || doc.schema_version > 3) { Debug.LogError("persona.json schema_version " + doc.schema_version + " not supported"); enabled = false; return; }
        shapeIndex = new int[VisemeNames.Length];
        for (int i = 0; i < VisemeNames.Length; i++)
            shapeIndex[i] = face.sharedMesh.GetBlendShapeIndex(blendShapePrefix + VisemeNames[i]);
    }

    void Update()
    {
        if (doc == null || !voice.isPlaying) return;
        float[] w = Weights(doc.lines[lineIndex].visemes, voice.time);  // the audio clock, not frame time
        for (int i = 0; i < VisemeNames.Length; i++)
        {
            if (shapeIndex[i] < 0) continue;
            face.SetBlendShapeWeight(shapeIndex[i], 100f * w[i]);
        }
    }

    // Co-articulated weights at time t (seconds of the line), in VisemeNames order, summing to 1.
    public static float[] Weights(Viseme[] track, float t)
    {
        var raw = new float[VisemeNames.Length];
        foreach (var v in track)
        {
            if (t < v.t_start - Lead || t > v.t_end + Lag) continue;
            float d = 1f;
            if (t < v.t_start) d = 1f - (v.t_start - t) / Lead;
            else if (t > v.t_end) d = 1f - (t - v.t_end) / Lag;
            int k = Array.IndexOf(VisemeNames, v.viseme);
            if (k >= 0) raw[k] = Mathf.Max(raw[k], Mathf.Clamp01(d));
        }
        float total = 0f;
        foreach (float r in raw) total += r;
        if (total <= 0f) { raw[0] = 1f; return raw; }
        for (int i = 0; i < raw.Length; i++) raw[i] /= total;
        return raw;
    }
}

// Talking portrait in 2D: show the persona's mouth-shape atlas (mouths.png + mouths.json, written
// beside persona.json) frame by frame while the line plays. Import mouths.png as a Texture2D
// (Read/Write not needed, Filter Mode Bilinear, no compression for crisp mouths), set `mouthsJson`
// (TextAsset of mouths.json), `atlas` (that texture), `voice` and `personaJson` as above, and put a
// SpriteRenderer on the same object. The frame shown is the one of the loudest viseme of the same
// co-articulated weights (PersonaLipSync.Weights), so it changes shape where a rig would.
[Serializable] public class AtlasFrame { public int index; public string name; public int x; public int y; public int w; public int h; public string kind; }
[Serializable] public class VisemeFrame { public string viseme; public int frame; }
[Serializable] public class MouthAtlas { public int atlas_version; public int[] frame_size; public AtlasFrame[] frames; public VisemeFrame[] viseme_frames; public int rest_frame; public int[] blink_frames; }

public class PersonaMouthAtlas : MonoBehaviour
{
    public TextAsset personaJson;
    public TextAsset mouthsJson;
    public Texture2D atlas;
    public int lineIndex = 0;
    public AudioSource voice;
    public SpriteRenderer target;

    PersonaDoc doc;
    MouthAtlas table;
    Sprite[] sprites;
    int shown = -1;

    void Start()
    {
        doc = JsonUtility.FromJson<PersonaDoc>(personaJson.text);
        table = JsonUtility.FromJson<MouthAtlas>(mouthsJson.text);
        if (table.atlas_version != 1) { Debug.LogError("mouths.json atlas_version " + table.atlas_version + " not supported"); enabled = false; return; }
        sprites = new Sprite[table.frames.Length];
        for (int i = 0; i < table.frames.Length; i++)
        {
            var f = table.frames[i];  // mouths.json counts y from the top, Unity from the bottom
            sprites[i] = Sprite.Create(atlas, new Rect(f.x, atlas.height - f.y - f.h, f.w, f.h), new Vector2(0.5f, 0.5f));
        }
        Show(table.rest_frame);
    }

    void Update()
    {
        if (doc == null || table == null) return;
        Show(voice.isPlaying ? FrameAt(doc.lines[lineIndex].visemes, table.viseme_frames, voice.time, table.rest_frame)
                             : table.rest_frame);
    }

    void Show(int frame)
    {
        if (frame == shown || frame < 0 || frame >= sprites.Length) return;
        target.sprite = sprites[frame];
        shown = frame;
    }

    // The atlas frame at time t (seconds of the line): the frame of the loudest co-articulated viseme.
    public static int FrameAt(Viseme[] track, VisemeFrame[] table, float t, int restFrame)
    {
        float[] w = PersonaLipSync.Weights(track, t);
        int best = 0;
        for (int i = 1; i < w.Length; i++) if (w[i] > w[best]) best = i;
        string name = PersonaLipSync.VisemeNames[best];
        foreach (var vf in table) if (vf.viseme == name) return vf.frame;
        return restFrame;
    }
}
