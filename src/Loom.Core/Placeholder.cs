namespace Loom.Core; internal static class Placeholder { }
