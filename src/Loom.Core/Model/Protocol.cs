using System.Text.Json.Serialization;

namespace Loom.Core.Model;

public enum Protocol
{
    [JsonStringEnumMemberName("TCP")]
    Tcp,

    [JsonStringEnumMemberName("UDP")]
    Udp,
}
