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
    static readonly string[] Names = { "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou" };

    void Start()
    {
        doc = JsonUtility.FromJson<PersonaDoc>(personaJson.text);
        if (doc.schema_version != 1 && doc.schema_version != 2) { Debug.LogError("persona.json schema_version " + doc.schema_version + " not supported"); enabled = false; return; }
        shapeIndex = new int[Names.Length];
        for (int i = 0; i < Names.Length; i++)
            shapeIndex[i] = face.sharedMesh.GetBlendShapeIndex(blendShapePrefix + Names[i]);
    }

    void Update()
    {
        if (doc == null || !voice.isPlaying) return;
        float[] w = Weights(doc.lines[lineIndex].visemes, voice.time);  // the audio clock, not frame time
        for (int i = 0; i < Names.Length; i++)
        {
            if (shapeIndex[i] < 0) continue;
            face.SetBlendShapeWeight(shapeIndex[i], 100f * w[i]);
        }
    }

    // Co-articulated weights at time t (seconds of the line), in Names order, summing to 1.
    public static float[] Weights(Viseme[] track, float t)
    {
        var raw = new float[Names.Length];
        foreach (var v in track)
        {
            if (t < v.t_start - Lead || t > v.t_end + Lag) continue;
            float d = 1f;
            if (t < v.t_start) d = 1f - (v.t_start - t) / Lead;
            else if (t > v.t_end) d = 1f - (t - v.t_end) / Lag;
            int k = Array.IndexOf(Names, v.viseme);
            if (k >= 0) raw[k] = Mathf.Max(raw[k], Mathf.Clamp01(d));
        }
        float total = 0f;
        foreach (float r in raw) total += r;
        if (total <= 0f) { raw[0] = 1f; return raw; }
        for (int i = 0; i < raw.Length; i++) raw[i] /= total;
        return raw;
    }
}
