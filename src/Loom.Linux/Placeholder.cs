namespace Loom.Linux; internal static class Placeholder { }
