using System;

namespace Example.Widgets
{
    /// <summary>Frobnicates widgets.</summary>
    public static class Frob
    {
        public static int Apply(int x) => x * 2;
    }
}
