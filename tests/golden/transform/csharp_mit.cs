// The MIT License (MIT)
//
// Copyright (c) 2015 Example Contributors
//
// Permission is hereby granted, free of charge, to any person obtaining a copy
// of this software and associated documentation files (the "Software"), to deal
// in the Software without restriction, including without limitation the rights
// to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
// copies of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.

using System;

namespace Example.Widgets
{
    /// <summary>Frobnicates widgets.</summary>
    public static class Frob
    {
        public static int Apply(int x) => x * 2;
    }
}
