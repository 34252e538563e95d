// Unity: drive a SkinnedMeshRenderer's viseme blend shapes from a digitalhuman persona.json line.
// Attach to the head object, set `personaJson` (TextAsset of persona.json), `voice` (AudioSource with
// the line's voice_NN.wav), `face` (the mesh) and name its blend shapes after the 15 Oculus/Meta visemes
// (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou), e.g. "viseme_aa". Needs Unity's JsonUtility only.
using System;
using UnityEngine;

[Serializable] public class Viseme { public float t_start; public float t_end; public string viseme; }
[Serializable] public class Line { public string text; public string audio; public int sample_rate; public float duration_s; public Viseme[] visemes; }
[Serializable] public class Traits { public string gender; public float female; public float age; }
[Serializable] public class PersonaDoc { public int schema_version; public ulong seed; public Traits traits; public string face; public Line[] lines; }

public class PersonaLipSync : MonoBehaviour
{
    public TextAsset personaJson;
    public int lineIndex = 0;
    public AudioSource voice;
    public SkinnedMeshRenderer face;
    public string blendShapePrefix = "viseme_";
    public float blendTime = 0.06f;   // seconds of cross-fade between mouth shapes

    PersonaDoc doc;
    int[] shapeIndex;
    static readonly string[] Names = { "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou" };

    void Start()
    {
        doc = JsonUtility.FromJson<PersonaDoc>(personaJson.text);
        if (doc.schema_version != 1) { Debug.LogError("persona.json schema_version " + doc.schema_version + " not supported"); enabled = false; return; }
        shapeIndex = new int[Names.Length];
        for (int i = 0; i < Names.Length; i++)
            shapeIndex[i] = face.sharedMesh.GetBlendShapeIndex(blendShapePrefix + Names[i]);
    }

    void Update()
    {
        if (doc == null || !voice.isPlaying) return;
        Viseme[] track = doc.lines[lineIndex].visemes;
        float t = voice.time;
        for (int i = 0; i < Names.Length; i++)
        {
            if (shapeIndex[i] < 0) continue;
            face.SetBlendShapeWeight(shapeIndex[i], 100f * Weight(track, Names[i], t));
        }
    }

    // 1 inside a segment of this viseme, fading in/out over blendTime at its edges.
    float Weight(Viseme[] track, string name, float t)
    {
        float w = 0f;
        foreach (var v in track)
        {
            if (v.viseme != name) continue;
            float a = Mathf.Clamp01((t - v.t_start + blendTime) / blendTime);
            float b = Mathf.Clamp01((v.t_end + blendTime - t) / blendTime);
            w = Mathf.Max(w, Mathf.Min(a, b));
        }
        return w;
    }
}
