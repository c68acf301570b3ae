/**
 * Widget registry.  Keeps track of every widget created by the factory and
 * hands out stable integer ids.
 */
package com.example.widgets;

public class Registry {
}
