package org.apache.example.util;

import java.util.List;

/**
 * Small string helpers.
 */
public final class Strings {
    private Strings() {}

    public static boolean isBlank(String s) {
        return s == null || s.trim().isEmpty();
    }
}
