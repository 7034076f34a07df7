"""jewelgan.train"""
