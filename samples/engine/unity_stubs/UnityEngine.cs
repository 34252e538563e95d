// Minimal stand-ins for the few Unity types the C# in samples/engine/ and docs/engines.md uses, so CI
// can compile that code with Debian's mono-mcs (tests/test_engines.py). Signatures follow Unity's
// documentation; the bodies do nothing useful. Not for use in a game: Unity provides the real ones.
using System;

namespace UnityEngine
{
    public class Object { }
    public class Component : Object { }
    public class Behaviour : Component { public bool enabled = true; }
    public class MonoBehaviour : Behaviour { }
    public class TextAsset : Object { public string text = ""; }
    public class AudioSource : Behaviour { public bool isPlaying; public float time; public void Play() { } }
    public class Mesh : Object { public int GetBlendShapeIndex(string name) { return -1; } }
    public class SkinnedMeshRenderer : Component
    {
        public Mesh sharedMesh = new Mesh();
        public void SetBlendShapeWeight(int index, float value) { }
    }
    public static class Mathf
    {
        public static float Log(float f) { return (float)Math.Log(f); }
        public static float Clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
        public static float Clamp01(float v) { return Clamp(v, 0f, 1f); }
        public static float Max(float a, float b) { return a > b ? a : b; }
        public static float Min(float a, float b) { return a < b ? a : b; }
    }
    public struct Vector2 { public float x, y; public Vector2(float x, float y) { this.x = x; this.y = y; } }
    public struct Rect { public float x, y, width, height; public Rect(float x, float y, float w, float h) { this.x = x; this.y = y; width = w; height = h; } }
    public class Texture2D : Object { public int width; public int height; }
    public class Sprite : Object
    {
        public static Sprite Create(Texture2D texture, Rect rect, Vector2 pivot) { return new Sprite(); }
    }
    public class SpriteRenderer : Component { public Sprite sprite; }
    public static class Debug { public static void LogError(object message) { } }
    public static class JsonUtility { public static T FromJson<T>(string json) { return default(T); } }
    [AttributeUsage(AttributeTargets.Field)] public class SerializeField : Attribute { }
}

// Unity Inference Engine (Sentis 2.2+; the same names under Unity.Sentis in 2.0-2.1)
namespace Unity.InferenceEngine
{
    public class ModelAsset : UnityEngine.Object { }
    public class Model { }
    public static class ModelLoader { public static Model Load(ModelAsset asset) { return new Model(); } }
    public enum BackendType { CPU, GPUCompute }
    public struct TensorShape { public TensorShape(params int[] dims) { } }
    public class Tensor : IDisposable { public void Dispose() { } }
    public class Tensor<T> : Tensor
    {
        public Tensor(TensorShape shape, T[] data) { }
        public Tensor<T> ReadbackAndClone() { return this; }
        public T[] DownloadToArray() { return new T[0]; }
    }
    public class Worker : IDisposable
    {
        public Worker(Model model, BackendType backend) { }
        public void Schedule(params Tensor[] inputs) { }
        public Tensor PeekOutput(string name) { return null; }
        public void Dispose() { }
    }
}
