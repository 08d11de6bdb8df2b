namespace Loom.Core.Migration;

/// <summary>A migration command refused before it changed anything (or, resumable, at a recorded step), saying why.</summary>
public sealed class MigrationRefusedException : Exception
{
    public MigrationRefusedException()
    {
    }

    public MigrationRefusedException(string message)
        : base(message)
    {
    }

    public MigrationRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
