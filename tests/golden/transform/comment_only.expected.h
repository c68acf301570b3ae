/*
 * Copyright (c) 2018 Example Corp.
 * SPDX-License-Identifier: BSD-3-Clause
 */
